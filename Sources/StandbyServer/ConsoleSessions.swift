import Crypto
import Foundation
import StandbyPrimitives
import Synchronization

/// The console's server-side sessions: a browser holds only a random session id (an `HttpOnly`,
/// `SameSite=Strict` cookie); the token it signed in with stays here, as the token's name and
/// roles. Sessions end at logout, after `idleTimeout` without a request, or when the process
/// restarts. Bounded: past `maximumSessions`, the least recently used session ends.
final class ConsoleSessions: Sendable {
    struct Session: Sendable {
        var token: APIToken
        /// Every state-changing form carries it; a request without it is refused.
        var csrf: String
        var lastUsed: Date
    }

    let idleTimeout: TimeInterval
    let maximumSessions: Int
    private let sessions = Mutex<[String: Session]>([:])

    init(idleTimeout: TimeInterval, maximumSessions: Int = 10_000) {
        self.idleTimeout = idleTimeout
        self.maximumSessions = maximumSessions
    }

    /// 256 random bits, hex.
    static func randomSecret() -> String {
        hexString(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// Starts a session for `token`; returns its id.
    func start(_ token: APIToken, now: Date) -> (id: String, session: Session) {
        let id = Self.randomSecret()
        let session = Session(token: token, csrf: Self.randomSecret(), lastUsed: now)
        sessions.withLock { sessions in
            sessions = sessions.filter { now.timeIntervalSince($0.value.lastUsed) < idleTimeout }
            if sessions.count >= maximumSessions,
                let oldest = sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key
            {
                sessions[oldest] = nil
            }
            sessions[id] = session
        }
        return (id, session)
    }

    /// The live session `id` names, its idle clock restarted; nil when there is none.
    func touch(_ id: String, now: Date) -> Session? {
        sessions.withLock { sessions in
            guard var session = sessions[id] else { return nil }
            guard now.timeIntervalSince(session.lastUsed) < idleTimeout else {
                sessions[id] = nil
                return nil
            }
            session.lastUsed = now
            sessions[id] = session
            return session
        }
    }

    func end(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }
}
