import Foundation

/// Where new IDs come from. The pure core asks for them instead of making them, so that the same
/// inputs give the same outputs in tests.
public protocol IDSource: Sendable {
    func next() -> String
}

/// The one id scheme of Standby: UUID version 7 at the source's current time, for every row and
/// every plan (deliveries, alerts, reports, jobs, resubmissions, failover events, commands).
public struct TimeOrderedIDSource: IDSource {
    let timeSource: any TimeSource

    public init(timeSource: any TimeSource = SystemTimeSource()) {
        self.timeSource = timeSource
    }

    public func next() -> String { TimeOrderedID.make(at: timeSource.now()) }
}

/// UUID version 7 (RFC 9562): the millisecond of `date`, then random bits. Rows keyed by these
/// are inserted near the end of their indexes instead of at random pages, which keeps the pages a
/// write transaction touches (and the WAL it appends) small under load.
public enum TimeOrderedID {
    public static func make(at date: Date) -> String {
        var generator = SystemRandomNumberGenerator()
        return make(at: date, using: &generator)
    }

    /// The smallest id of `date`'s millisecond: every id made before it sorts below, as text too
    /// (ranges of time-ordered keys without an index on their time).
    public static func lowerBound(at date: Date) -> String {
        var zero = ZeroBits()
        return make(at: date, using: &zero)
    }

    private struct ZeroBits: RandomNumberGenerator {
        mutating func next() -> UInt64 { 0 }
    }

    public static func make<Generator: RandomNumberGenerator>(at date: Date, using generator: inout Generator) -> String
    {
        let milliseconds = UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded())) & 0xFFFF_FFFF_FFFF
        let randomA: UInt64 = generator.next()
        let randomB: UInt64 = generator.next()
        let high: UInt64 = (milliseconds << 16) | 0x7000 | (randomA & 0x0FFF)
        let low: UInt64 = (randomB & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        var text = [UInt8]()
        text.reserveCapacity(36)
        for index in 0..<32 {
            if index == 8 || index == 12 || index == 16 || index == 20 { text.append(UInt8(ascii: "-")) }
            let word = index < 16 ? high : low
            text.append(hexDigit(UInt8((word >> (60 - 4 * UInt64(index % 16))) & 0xF)))
        }
        return String(decoding: text, as: UTF8.self)
    }
}
