import Crypto
import Foundation
import GRDB
import StandbyCore

public struct EventQuery: Sendable, Hashable {
    public var types: [String] = []
    public var deployment: String?
    public var hub: String?
    public var since: Date?
    public var until: Date?
    public var page = PageRequest()
    public init() {}

    /// A filter that keeps every event: only such an export verifies as a whole chain.
    public var isUnfiltered: Bool { types.isEmpty && deployment == nil && hub == nil && since == nil && until == nil }
}

/// What pruning leaves behind: the hash of the last removed event, signed when a key is configured.
public struct EventAnchor: Sendable, Hashable, Codable {
    public var seq: Int64
    public var hash: String
    public var at: String
    public var prunedBefore: String
    public var prunedCount: Int
    public var signature: String?

    public static func sign(seq: Int64, hash: String, prunedBefore: String, key: String) -> String {
        let message = Data("standby-anchor|\(seq)|\(hash)|\(prunedBefore)".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(key.utf8)))
        return hexString(mac)
    }

    public func hasValidSignature(key: String) -> Bool {
        guard let signature else { return false }
        return signature == Self.sign(seq: seq, hash: hash, prunedBefore: prunedBefore, key: key)
    }
}

public enum ExportFormat: String, Sendable, CaseIterable {
    case ndjson
    case csv
}

/// Lines of an export: NDJSON (one canonical JSON object per event, first an anchor line when the
/// history was pruned) or CSV (RFC 4180, `data` as JSON text).
public enum EventExport {
    public static let csvHeader = "seq,at,type,deploymentId,hub,actor,data,prevHash,hash\r\n"

    public static func ndjsonLine(_ event: EventRecord) -> String {
        JSONValue.object([
            "seq": .number(Double(event.seq)), "at": .string(event.at), "type": .string(event.type),
            "deploymentId": .optional(event.deploymentId), "hub": .optional(event.hub), "actor": .string(event.actor),
            "data": event.data, "prevHash": .string(event.prevHash), "hash": .string(event.hash),
        ]).canonicalString() + "\n"
    }

    public static func ndjsonLine(_ anchor: EventAnchor) -> String {
        JSONValue.object(["anchor": JSONValue.encoding(anchor)]).canonicalString() + "\n"
    }

    public static func csvLine(_ event: EventRecord) -> String {
        [
            String(event.seq), event.at, event.type, event.deploymentId ?? "", event.hub ?? "", event.actor,
            event.data.canonicalString(), event.prevHash, event.hash,
        ].map(csvField).joined(separator: ",") + "\r\n"
    }

    static func csvField(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Parses one NDJSON line back into an event (or an anchor).
    public static func parse(line: String) -> (event: EventRecord?, anchor: EventAnchor?) {
        guard let json = JSONValue.parse(line), json.objectValue != nil else { return (nil, nil) }
        if let anchor = json["anchor"], let data = try? JSONEncoder().encode(anchor) {
            return (nil, try? JSONDecoder().decode(EventAnchor.self, from: data))
        }
        guard let seq = json["seq"]?.doubleValue, let at = json["at"]?.stringValue, let type = json["type"]?.stringValue,
            let actor = json["actor"]?.stringValue, let prevHash = json["prevHash"]?.stringValue,
            let hash = json["hash"]?.stringValue
        else { return (nil, nil) }
        let deployment = json["deploymentId"].flatMap { $0 == .null ? nil : $0.stringValue }
        let hub = json["hub"].flatMap { $0 == .null ? nil : $0.stringValue }
        return (
            EventRecord(
                seq: Int64(seq), at: at, type: type, deploymentId: deployment, hub: hub, actor: actor,
                data: json["data"] ?? .null, prevHash: prevHash, hash: hash), nil
        )
    }
}

/// Checks a history one event at a time, in order: each event's hash must match its content and
/// chain to the one before, and sequence numbers must follow each other. Names the first bad seq.
public struct AuditVerifier: Sendable {
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var seq: Int64
        public var reason: String
        public var description: String { "seq \(seq): \(reason)" }
    }

    private var previousSeq: Int64?
    private var previousHash: String?
    public private(set) var verified = 0
    let anchorKey: String?

    public init(anchorKey: String? = nil) {
        self.anchorKey = anchorKey
    }

    /// An anchor must come first: the chain continues from its hash.
    public mutating func start(from anchor: EventAnchor) throws(Failure) {
        if let anchorKey, !anchor.hasValidSignature(key: anchorKey) {
            throw Failure(seq: anchor.seq, reason: "the pruning anchor's signature does not match the audit key")
        }
        previousSeq = anchor.seq
        previousHash = anchor.hash
    }

    public mutating func check(_ event: EventRecord) throws(Failure) {
        let body = EventLog.canonicalBody(
            seq: event.seq, at: event.at, type: event.type, deploymentId: event.deploymentId, hub: event.hub,
            actor: event.actor, data: event.data)
        if EventLog.chainHash(prevHash: event.prevHash, body: body) != event.hash {
            throw Failure(seq: event.seq, reason: "content does not match its hash (the event was modified)")
        }
        let expectedSeq = (previousSeq ?? 0) + 1
        let expectedPrev = previousHash ?? EventLog.genesisHash
        if event.seq != expectedSeq || event.prevHash != expectedPrev {
            let what =
                event.seq < expectedSeq
                ? "out of order or duplicated (expected seq \(expectedSeq))"
                : event.seq > expectedSeq
                    ? "events before it are missing (expected seq \(expectedSeq))"
                    : "does not chain to the event before it (an event was inserted, removed or reordered)"
            throw Failure(seq: event.seq, reason: what)
        }
        previousSeq = event.seq
        previousHash = event.hash
        verified += 1
    }
}

/// Reading, exporting, verifying and pruning the history.
public final class EventHistory: Sendable {
    let database: StandbyDatabase

    public init(database: StandbyDatabase) {
        self.database = database
    }

    static func filter(_ query: EventQuery) -> SQLFilter {
        var filter = SQLFilter()
        if !query.types.isEmpty {
            filter.add("type IN (\(Array(repeating: "?", count: query.types.count).joined(separator: ", ")))", values: query.types)
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
                try query.page.fetch(db, from: "events", filter: Self.filter(query), ascending: true, EventLog.record)
            }
        }
    }

    /// Pages of `batchSize` events after `afterSeq`, for streaming exports in constant memory.
    public func batch(_ query: EventQuery, afterSeq: Int64, batchSize: Int) async throws -> [EventRecord] {
        try await StoreError.mapping {
            try await database.pool.read { db in
                try PageRequest(limit: batchSize, after: afterSeq)
                    .fetch(db, from: "events", filter: Self.filter(query), ascending: true, EventLog.record).items
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
                return try Int.fetchOne(db, sql: "SELECT count(*) FROM events \(filter.whereClause)", arguments: filter.arguments) ?? 0
            }
        }
    }

    /// Walks the whole stored chain; throws the first failure.
    public func verify(anchorKey: String?, batchSize: Int = 5000) async throws -> Int {
        var verifier = AuditVerifier(anchorKey: anchorKey)
        if let anchor = try await latestAnchor() { try verifier.start(from: anchor) }
        var after: Int64 = 0
        while true {
            let events = try await batch(EventQuery(), afterSeq: after, batchSize: batchSize)
            guard let last = events.last else { break }
            for event in events { try verifier.check(event) }
            after = last.seq
        }
        return verifier.verified
    }

    /// Removes events older than `before`, leaving an anchor (signed when `signingKey` is given)
    /// from which the rest still verifies. Returns how many events were removed.
    public func prune(before: Date, signingKey: String?, now: Date) async throws -> Int {
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
                let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE seq <= ?", arguments: [seq]) ?? 0
                try db.execute(sql: "DELETE FROM events WHERE seq <= ?", arguments: [seq])
                let signature = signingKey.map { EventAnchor.sign(seq: seq, hash: hash, prunedBefore: cutoff, key: $0) }
                try db.execute(
                    sql: """
                        INSERT INTO event_anchors (seq, hash, at, pruned_before, pruned_count, created_at, signature)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [seq, hash, last["at"] as String, cutoff, count, Timestamp.format(now), signature])
                // The pruning itself is history too, chained after the remaining events.
                try EventLog.append(
                    EventDraft(
                        type: "history.pruned", at: now, actor: "operator",
                        data: .object([
                            "throughSeq": .number(Double(seq)), "count": .number(Double(count)), "before": .string(cutoff),
                            "signed": .bool(signature != nil),
                        ])), in: db)
                return count
            }
        }
    }
}
