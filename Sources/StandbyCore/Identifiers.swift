import Foundation

/// Where new IDs come from. The pure core asks for them instead of making them, so that the same
/// inputs give the same outputs in tests.
public protocol IDSource: Sendable {
    func next() -> String
}

public struct UUIDSource: IDSource {
    public init() {}
    public func next() -> String { UUID().uuidString.lowercased() }
}
