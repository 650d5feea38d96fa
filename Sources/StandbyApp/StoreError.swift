/// Failures of the storage ports and the use cases that callers must tell apart: the first means "try again later" (an HTTP
/// 503 with Retry-After), the others are answers.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database cannot take the write right now: locked past the busy timeout, read-only,
    /// disk full, I/O error. Nothing of the failed transaction was committed.
    case unavailable(String)
    /// The file was written by a newer Standby whose migrations this build does not know.
    case newerSchema(unknownMigrations: [String])
    case notFound(String)
    case conflict(String)
    /// The history is keyed and this process has no (or another) chain key.
    case keyRequired(String)
    /// Singleton work was refused: this instance no longer holds the leader lease (or holds it
    /// under a newer epoch than the one the work began with).
    case fenced(String)

    public var description: String {
        switch self {
        case .unavailable(let reason): return "database unavailable: \(reason)"
        case .newerSchema(let names):
            return "the database was written by a newer Standby (unknown migrations: "
                + names.joined(separator: ", ") + "); upgrade Standby or point it at another database"
        case .notFound(let what): return "\(what) not found"
        case .conflict(let what): return what
        case .keyRequired(let reason): return reason
        case .fenced(let reason): return "fenced: \(reason)"
        }
    }
}
