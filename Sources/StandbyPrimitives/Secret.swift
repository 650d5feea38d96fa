/// A configured secret (a token, a signing key, a push secret). It prints as `<redacted>` in
/// `description`, `debugDescription` and reflection, so that a log line that shows a value holding
/// it (swift-service-lifecycle's "Starting service" lines at debug level, say) never shows the
/// secret itself. Read it only where it is used, through `value`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable,
    ExpressibleByStringLiteral
{
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    public init(stringLiteral value: String) {
        self.value = value
    }

    public var utf8: [UInt8] { Array(value.utf8) }
    public var isEmpty: Bool { value.isEmpty }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "Secret(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
