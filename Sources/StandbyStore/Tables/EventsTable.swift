import Foundation
import GRDB
import StandbyApp
import StandbyPrimitives

// The `events` table (the hash-chained history) and `event_anchors` (what pruning leaves).

extension EventChain {
    /// Appends `draft` inside the caller's write transaction, chained to the newest event (or,
    /// after a prune removed every event, to the anchor); returns its seq. With `head`, the head
    /// this transaction last wrote is taken from it instead of read back.
    @discardableResult
    func append(_ draft: EventDraft, in db: Database, head: ChainHead? = nil) throws -> Int64 {
        let (lastSeq, prevHash) =
            try head?.known
            ?? EventsTable.head(try db.cachedStatement(sql: "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"))
            ?? EventsTable.head(
                try db.cachedStatement(sql: "SELECT seq, hash FROM event_anchors ORDER BY seq DESC LIMIT 1"))
            ?? (0, EventLog.genesisHash)
        let (event, dataText) = link(draft, seq: lastSeq + 1, prevHash: prevHash)
        try db.cachedStatement(
            sql: """
                INSERT INTO events (seq, at, type, deployment_id, hub, actor, data, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            event.seq, event.at, event.type, event.deploymentId, event.hub, event.actor, dataText, event.prevHash,
            event.hash,
        ])
        head?.known = (event.seq, event.hash)
        return event.seq
    }
}

/// The chain's head as one write transaction last appended it, so that its next append need not
/// read it back (a delivery appends two events; a batch, dozens). Whoever rolls back a savepoint
/// of the transaction forgets it, since the event it names may be gone; every append of a
/// transaction that has one goes through it (`SQLiteTransaction` sees to that). Confined to the
/// transaction's thread, hence unchecked.
final class ChainHead: @unchecked Sendable {
    var known: (seq: Int64, hash: String)?

    func forget() { known = nil }
}

enum EventsTable {
    /// Reads the row in place, by position: this runs for every event appended. The row is a view
    /// of the statement, which the cursor resets when it goes, hence the cursor's extended lifetime.
    static func head(_ statement: Statement) throws -> (seq: Int64, hash: String)? {
        let cursor = try Row.fetchCursor(statement)
        return try withExtendedLifetime(cursor) {
            guard let row = try cursor.next() else { return nil }
            return (row[0], row[1])
        }
    }

    /// A stored event; `data` that is not JSON (never written so) is kept as a string.
    static func record(_ row: Row) -> EventRecord {
        let dataText: String = row["data"]
        return EventRecord(
            seq: row["seq"], at: row["at"], type: row["type"], deploymentId: row["deployment_id"], hub: row["hub"],
            actor: row["actor"], data: JSONValue.parse(dataText) ?? .string(dataText), prevHash: row["prev_hash"],
            hash: row["hash"])
    }
}
