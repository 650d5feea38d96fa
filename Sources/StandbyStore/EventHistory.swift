import Crypto
import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Reading, exporting, verifying and pruning the history.
public final class EventHistory: Sendable {
    let database: StandbyDatabase

    public init(database: StandbyDatabase) {
        self.database = database
    }

    static func filter(_ query: EventQuery) -> SQLFilter {
        var filter = SQLFilter()
        if !query.types.isEmpty {
            filter.add(
                "type IN (\(Array(repeating: "?", count: query.types.count).joined(separator: ", ")))",
                values: query.types)
        }
        filter.add("deployment_id = ?", query.deployment)
        filter.add("hub = ?", query.hub)
        filter.add("at >= ?", query.since.map(Timestamp.format))
        filter.add("at < ?", query.until.map(Timestamp.format))
        return filter
    }

    /// Oldest first, as history is read.
    public func list(_ query: EventQuery) async throws -> Page<EventRecord> {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try query.page.fetch(
                    db, from: "events", filter: Self.filter(query), ascending: true, EventsTable.record)
            }
        }
    }

    /// Pages of `batchSize` events after `afterSeq`, for streaming exports in constant memory.
    public func batch(_ query: EventQuery, afterSeq: Int64, batchSize: Int) async throws -> [EventRecord] {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try PageRequest(limit: batchSize, after: afterSeq)
                    .fetch(db, from: "events", filter: Self.filter(query), ascending: true, EventsTable.record).items
            }
        }
    }

    public func latestAnchor() async throws -> EventAnchor? {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM event_anchors ORDER BY seq DESC LIMIT 1").map {
                    EventAnchor(
                        seq: $0["seq"], hash: $0["hash"], at: $0["at"], prunedBefore: $0["pruned_before"],
                        prunedCount: $0["pruned_count"], signature: $0["signature"])
                }
            }
        }
    }

    public func count(_ query: EventQuery) async throws -> Int {
        try await StoreError.mapping {
            try await database.pool.read { db in
                let filter = Self.filter(query)
                return try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM events \(filter.whereClause)", arguments: filter.arguments) ?? 0
            }
        }
    }

    /// Walks the whole stored chain; throws the first failure.
    public func verify(_ verifier: AuditVerifier, batchSize: Int = 5000) async throws -> AuditVerifier {
        var verifier = verifier
        try verifier.checkCheckpointSignature()
        if let anchor = try await latestAnchor() { try verifier.start(from: anchor) }
        var after: Int64 = 0
        while true {
            let events = try await batch(EventQuery(), afterSeq: after, batchSize: batchSize)
            guard let last = events.last else { break }
            for event in events { try verifier.check(event) }
            after = last.seq
        }
        try verifier.finish()
        return verifier
    }

    /// `verify(_:)` with the given keys; returns how many events verified.
    public func verify(chainKey: Secret? = nil, anchorKey: Secret? = nil) async throws -> Int {
        try await verify(AuditVerifier(chainKey: chainKey, anchorKey: anchorKey)).verified
    }

    /// The newest link of the chain: the last event, or the anchor when pruning left none.
    public func head() async throws -> (seq: Int64, hash: String)? {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try Row.fetchOne(db, sql: "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").map {
                    ($0["seq"], $0["hash"])
                }
                    ?? Row.fetchOne(db, sql: "SELECT seq, hash FROM event_anchors ORDER BY seq DESC LIMIT 1").map {
                        ($0["seq"], $0["hash"])
                    }
            }
        }
    }

    /// A signed checkpoint of the head as it is now.
    public func checkpoint(key: Secret?, now: Date) async throws -> AuditCheckpoint {
        let (seq, hash) = try await head() ?? (0, EventLog.genesisHash)
        return AuditCheckpoint(seq: seq, hash: hash, at: Timestamp.format(now), key: key)
    }

    /// Makes the history fit this process's chain before it appends anything. With a key, a
    /// history whose newest event is unkeyed (written before the key was set, or empty) gets a
    /// `history.keyed` boundary event, keyed, from which every event is keyed. Without a key, a
    /// history whose newest event is keyed is refused: appending unkeyed events after it would
    /// look like a rewrite, and nothing would protect them.
    public func prepareChain(now: Date) throws {
        try StoreError.mapping {
            try database.pool.write { db in
                let head = try Row.fetchOne(db, sql: "SELECT * FROM events ORDER BY seq DESC LIMIT 1").map(
                    EventsTable.record)
                let headIsUnkeyed = head.map { $0.hasPlainLink(body: $0.canonicalBody) }
                guard database.chain.isKeyed else {
                    if headIsUnkeyed == false {
                        throw StoreError.keyRequired(
                            "the history is keyed (its newest event, seq \(head?.seq ?? 0), is not plain SHA-256); "
                                + "set audit.chainKey to the key it was written with")
                    }
                    return
                }
                guard headIsUnkeyed ?? true else { return }
                try database.chain.append(
                    EventDraft(
                        type: EventLog.keyedBoundaryType, at: now, actor: "standby",
                        data: .object([
                            "algorithm": .string("HMAC-SHA256"),
                            "unkeyedThroughSeq": .number(Double(head?.seq ?? 0)),
                        ])), in: db)
            }
        }
    }

    /// Removes events older than `before`, leaving an anchor (signed when `signingKey` is given)
    /// from which the rest still verifies. Returns how many events were removed.
    public func prune(before: Date, signingKey: Secret?, now: Date) async throws -> Int {
        try await StoreError.mapping {
            try await database.pool.write { db in
                let cutoff = Timestamp.format(before)
                guard
                    let last = try Row.fetchOne(
                        db, sql: "SELECT seq, hash, at FROM events WHERE at < ? ORDER BY seq DESC LIMIT 1",
                        arguments: [cutoff])
                else { return 0 }
                let seq: Int64 = last["seq"]
                let hash: String = last["hash"]
                let count =
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE seq <= ?", arguments: [seq]) ?? 0
                try db.execute(sql: "DELETE FROM events WHERE seq <= ?", arguments: [seq])
                let signature = signingKey.map { EventAnchor.sign(seq: seq, hash: hash, prunedBefore: cutoff, key: $0) }
                try db.execute(
                    sql: """
                        INSERT INTO event_anchors (seq, hash, at, pruned_before, pruned_count, created_at, signature)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [seq, hash, last["at"] as String, cutoff, count, Timestamp.format(now), signature])
                // The pruning itself is history too, chained after the remaining events.
                try database.chain.append(
                    EventDraft(
                        type: "history.pruned", at: now, actor: "operator",
                        data: .object([
                            "throughSeq": .number(Double(seq)), "count": .number(Double(count)),
                            "before": .string(cutoff),
                            "signed": .bool(signature != nil),
                        ])), in: db)
                return count
            }
        }
    }
}
