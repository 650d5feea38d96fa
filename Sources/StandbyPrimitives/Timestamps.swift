import Foundation

/// Timestamps as Standby writes them (UTC, ISO-8601, milliseconds) and reads them (leniently,
/// because Azure senders disagree on fractional digits and offsets).
public enum Timestamp {
    /// `date` to the millisecond `format` writes, so that what is stored reads back equal.
    public static func truncatedToMilliseconds(_ date: Date) -> Date {
        let millis = ((date.timeIntervalSince1970 * 1_000_000).rounded() / 1000).rounded(.down)
        return millis.isFinite ? Date(timeIntervalSince1970: millis / 1000) : date
    }

    /// `2026-11-28T10:00:00.000Z`. Fixed width, so the text sorts like the instant.
    public static func format(_ date: Date) -> String {
        // To the microsecond first: a parsed "….342" may be stored a hair below .342 (before 1970 especially).
        var millis = ((date.timeIntervalSince1970 * 1_000_000).rounded() / 1000).rounded(.down)
        if !millis.isFinite { millis = 0 }
        let totalMillis = Int64(millis)
        let seconds = totalMillis >= 0 ? totalMillis / 1000 : (totalMillis - 999) / 1000
        let milli = Int(totalMillis - seconds * 1000)
        let (days, secondOfDay) = divFloor(seconds, 86_400)
        let (year, month, day) = civilFromDays(days)
        let hour = Int(secondOfDay / 3600)
        let minute = Int(secondOfDay % 3600 / 60)
        let second = Int(secondOfDay % 60)
        // Written into bytes: this runs several times for every delivery and event.
        var out = [UInt8]()
        out.reserveCapacity(24)
        if year < 0 || year > 9999 {
            out.append(contentsOf: String(year).utf8)
        } else {
            appendDigits(year, width: 4, to: &out)
        }
        for (separator, value, width) in [
            (UInt8(ascii: "-"), month, 2), (UInt8(ascii: "-"), day, 2), (UInt8(ascii: "T"), hour, 2),
            (UInt8(ascii: ":"), minute, 2), (UInt8(ascii: ":"), second, 2), (UInt8(ascii: "."), milli, 3),
        ] {
            out.append(separator)
            appendDigits(value, width: width, to: &out)
        }
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendDigits(_ value: Int, width: Int, to out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Accepts `YYYY-MM-DDTHH:MM[:SS[.fraction]]` followed by `Z`, `±HH:MM`, `±HHMM` or nothing
    /// (read as UTC, as Azure means it). The date/time separator may be `T`, `t` or a space.
    /// Fractions of any length are accepted; digits past nanoseconds are ignored.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ width: Int) -> Int? {
            guard index + width <= bytes.count else { return nil }
            var value = 0
            for offset in 0..<width {
                let byte = bytes[index + offset]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += width
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt "), let hour = number(2), expect(":"), let minute = number(2)
        else { return nil }
        var second = 0
        var nanos = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
            index += 1
            guard let parsedSecond = number(2) else { return nil }
            second = parsedSecond
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: ",") {
                index += 1
                var digits = 0
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                    if digits < 9 { nanos = nanos * 10 + Int(bytes[index] - 48) }
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { return nil }
                if digits < 9 { for _ in digits..<9 { nanos *= 10 } }
            }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            let sign = bytes[index]
            if sign == UInt8(ascii: "Z") || sign == UInt8(ascii: "z") {
                index += 1
            } else if sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                index += 1
                guard let offsetHours = number(2), offsetHours <= 23 else { return nil }
                if index < bytes.count, bytes[index] == UInt8(ascii: ":") { index += 1 }
                guard let offsetMinutes = number(2), offsetMinutes <= 59 else { return nil }
                offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
            } else {
                return nil
            }
        }
        // Year 0000 does not exist in ISO 8601's common use (RFC 3339 starts at 0001).
        guard index == bytes.count, year >= 1, (1...12).contains(month), (1...daysInMonth(year, month)).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1_000_000_000)
    }

    private static func divFloor(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    private static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
    private static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civilFromDays(_ days: Int64) -> (Int, Int, Int) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }
}

/// Where "now" comes from. Injected everywhere so that tests decide what time it is.
public protocol TimeSource: Sendable {
    func now() -> Date
}

public struct SystemTimeSource: TimeSource {
    public init() {}
    public func now() -> Date { Date() }
}
