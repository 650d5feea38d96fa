import GRDB
import StandbyApp

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
