import Crypto
import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Reading, exporting, verifying and pruning the history.
public final class EventHistory: HistoryStore {
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

    public func newestEvent() async throws -> EventRecord? {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM events ORDER BY seq DESC LIMIT 1").map(EventsTable.record)
            }
        }
    }

    public var chain: EventChain { database.chain }

    public func append(_ event: EventDraft) async throws {
        try await StoreError.mapping {
            try await database.pool.write { [database] db in _ = try database.chain.append(event, in: db) }
        }
    }

    /// Removes events older than `before`, leaving an anchor (signed when `signingKey` is given)
    /// from which the rest still verifies. Returns how many events were removed.
    public func prune(before: Date, signingKey: Secret?, now: Date) async throws -> PruneOutcome {
        try await StoreError.mapping {
            try await database.pool.write { db in
                let cutoff = Timestamp.format(before)
                var outcome = PruneOutcome()
                guard
                    let last = try Row.fetchOne(
                        db, sql: "SELECT seq, hash, at FROM events WHERE at < ? ORDER BY seq DESC LIMIT 1",
                        arguments: [cutoff])
                else { return outcome }
                let seq: Int64 = last["seq"]
                let hash: String = last["hash"]
                outcome.events =
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE seq <= ?", arguments: [seq]) ?? 0
                try db.execute(sql: "DELETE FROM events WHERE seq <= ?", arguments: [seq])
                // Delivery ids are time-ordered (UUIDv7 at receipt), so the primary key finds the
                // old ones without an index on received_at; the time itself decides.
                try db.execute(
                    sql: "DELETE FROM deliveries WHERE id < ? AND received_at < ?",
                    arguments: [TimeOrderedID.lowerBound(at: before.addingTimeInterval(1)), cutoff])
                outcome.deliveries = db.changesCount
                try db.execute(sql: "DELETE FROM health_reports WHERE received_at < ?", arguments: [cutoff])
                outcome.healthReports = db.changesCount
                try db.execute(sql: "DELETE FROM readiness_reports WHERE received_at < ?", arguments: [cutoff])
                outcome.readinessReports = db.changesCount
                let signature = signingKey.map { EventAnchor.sign(seq: seq, hash: hash, prunedBefore: cutoff, key: $0) }
                try db.execute(
                    sql: """
                        INSERT INTO event_anchors (seq, hash, at, pruned_before, pruned_count, created_at, signature)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        seq, hash, last["at"] as String, cutoff, outcome.events, Timestamp.format(now), signature,
                    ])
                // The pruning itself is history too, chained after the remaining events.
                try database.chain.append(
                    Self.prunedEvent(outcome, throughSeq: seq, before: cutoff, signed: signature != nil, at: now),
                    in: db)
                return outcome
            }
        }
    }
}
