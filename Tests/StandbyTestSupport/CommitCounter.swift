import GRDB
import Synchronization

/// Counts the transactions a database commits: tests use it to see that writes shared them.
public final class CommitCounter: TransactionObserver, Sendable {
    private let count = Mutex(0)

    public init() {}

    public var commits: Int { count.withLock { $0 } }
    public func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
    public func databaseDidChange(with event: DatabaseEvent) {}
    public func databaseDidCommit(_ db: Database) { count.withLock { $0 += 1 } }
    public func databaseDidRollback(_ db: Database) {}
}
