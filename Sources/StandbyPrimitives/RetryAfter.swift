import Foundation

/// An HTTP `Retry-After` header in its delay-seconds form, as every client of Standby's (command
/// pushes, notifications, the probe, Azure Resource Manager) reads it. The HTTP-date form is not
/// read: none of the services Standby calls send it.
public enum RetryAfter {
    public static func seconds(_ header: String?) -> TimeInterval? {
        header.flatMap { TimeInterval($0.trimmingCharacters(in: .whitespaces)) }
    }
}
