import GRDB

/// Failures of the store that callers must tell apart: the first means "try again later" (an HTTP
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

    public var description: String {
        switch self {
        case .unavailable(let reason): return "database unavailable: \(reason)"
        case .newerSchema(let names):
            return "the database was written by a newer Standby (unknown migrations: "
                + names.joined(separator: ", ") + "); upgrade Standby or point it at another database"
        case .notFound(let what): return "\(what) not found"
        case .conflict(let what): return what
        case .keyRequired(let reason): return reason
        }
    }
}

extension StoreError {
    private static let transientCodes: Set<Int32> = [
        ResultCode.SQLITE_BUSY.primaryResultCode.rawValue,
        ResultCode.SQLITE_LOCKED.primaryResultCode.rawValue,
        ResultCode.SQLITE_READONLY.primaryResultCode.rawValue,
        ResultCode.SQLITE_FULL.primaryResultCode.rawValue,
        ResultCode.SQLITE_IOERR.primaryResultCode.rawValue,
        ResultCode.SQLITE_CANTOPEN.primaryResultCode.rawValue,
        ResultCode.SQLITE_PERM.primaryResultCode.rawValue,
        ResultCode.SQLITE_NOLFS.primaryResultCode.rawValue,
        ResultCode.SQLITE_PROTOCOL.primaryResultCode.rawValue,
    ]

    /// Storage trouble as `.unavailable`; every other error as it is.
    static func classify(_ error: any Error) -> any Error {
        guard let error = error as? DatabaseError,
            transientCodes.contains(error.resultCode.primaryResultCode.rawValue)
        else { return error }
        return StoreError.unavailable(error.message ?? "\(error.resultCode)")
    }

    /// Runs `body`, turning storage trouble into `.unavailable` and leaving every other error as it is.
    static func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw classify(error)
        }
    }

    static func mapping<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw classify(error)
        }
    }
}
