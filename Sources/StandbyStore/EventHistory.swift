import Crypto
import Foundation
import GRDB
import StandbyCore
import StandbyPrimitives

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

    public static func sign(seq: Int64, hash: String, prunedBefore: String, key: Secret) -> String {
        hmacSignature(of: "standby-anchor|\(seq)|\(hash)|\(prunedBefore)", key: key)
    }

    public func hasValidSignature(key: Secret) -> Bool {
        guard let signature else { return false }
        return constantTimeEqual(signature, Self.sign(seq: seq, hash: hash, prunedBefore: prunedBefore, key: key))
    }
}

/// HMAC-SHA256 of `message` under `key`, in hex: anchors and checkpoints are signed so.
func hmacSignature(of message: String, key: Secret) -> String {
    hexString(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: Data(key.utf8))))
}

/// The head of the chain at one moment, signed, to be kept outside the database (a log, a
/// ticket, another system): a later `audit verify --checkpoint` proves that the history still
/// reaches that event with that hash, which nobody who can only write the database can fake.
public struct AuditCheckpoint: Sendable, Hashable, Codable {
    public var seq: Int64
    public var hash: String
    public var at: String
    public var signature: String?

    public init(seq: Int64, hash: String, at: String, key: Secret?) {
        self.seq = seq
        self.hash = hash
        self.at = at
        signature = key.map { Self.sign(seq: seq, hash: hash, at: at, key: $0) }
    }

    public static func sign(seq: Int64, hash: String, at: String, key: Secret) -> String {
        hmacSignature(of: "standby-checkpoint|\(seq)|\(hash)|\(at)", key: key)
    }

    public func hasValidSignature(key: Secret) -> Bool {
        guard let signature else { return false }
        return constantTimeEqual(signature, Self.sign(seq: seq, hash: hash, at: at, key: key))
    }

    /// One line of canonical JSON, as `standby audit checkpoint` prints it.
    public var jsonLine: String {
        JSONValue.object([
            "seq": .number(Double(seq)), "hash": .string(hash), "at": .string(at),
            "signature": signature.map(JSONValue.string) ?? .null,
        ]).canonicalString()
    }

    public init?(jsonLine: String) {
        guard let json = JSONValue.parse(jsonLine), let seq = json["seq"]?.doubleValue,
            let hash = json["hash"]?.stringValue, let at = json["at"]?.stringValue
        else { return nil }
        self.seq = Int64(seq)
        self.hash = hash
        self.at = at
        signature = json["signature"]?.stringValue
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

    /// RFC 4180 quoting, after neutralising what a spreadsheet would run as a formula (OWASP's CSV
    /// injection advice): a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
    /// gets a leading `'`, which spreadsheets show as text. Free text from operators, workers and
    /// alerts reaches these cells.
    static func csvField(_ value: String) -> String {
        var value = value
        if let first = value.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) {
            value = "'" + value
        }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Parses one NDJSON line back into an event (or an anchor).
    public static func parse(line: String) -> (event: EventRecord?, anchor: EventAnchor?) {
        guard let json = JSONValue.parse(line), json.objectValue != nil else { return (nil, nil) }
        if let anchor = json["anchor"], let data = try? JSONEncoder().encode(anchor) {
            return (nil, try? JSONDecoder().decode(EventAnchor.self, from: data))
        }
        guard let seq = json["seq"]?.doubleValue, let at = json["at"]?.stringValue,
            let type = json["type"]?.stringValue,
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
///
/// With the chain key, keyed events (HMAC-SHA256) are checked in full; events written before the
/// history was keyed (plain SHA-256) may only come before every keyed one, and a history that
/// holds no keyed event at all is refused, since anyone could have rewritten it. Without the key,
/// a keyed event cannot be checked and verification stops there. Anchors and checkpoints must
/// carry a valid signature whenever a key is given.
public struct AuditVerifier: Sendable {
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var seq: Int64
        public var reason: String
        /// True when the history may be intact but cannot be checked without the chain key.
        public var needsKey = false
        public var description: String { "seq \(seq): \(reason)" }
    }

    private var previousSeq: Int64?
    private var previousHash: String?
    public private(set) var verified = 0
    public private(set) var keyed = 0
    public private(set) var unkeyed = 0
    private var checkpointReached = false
    let chainKey: SymmetricKey?
    let anchorKey: Secret?
    let checkpoint: AuditCheckpoint?

    public init(chainKey: Secret? = nil, anchorKey: Secret? = nil, checkpoint: AuditCheckpoint? = nil) {
        self.chainKey = EventChain(key: chainKey).key
        self.anchorKey = anchorKey ?? chainKey
        self.checkpoint = checkpoint
    }

    /// Checks the checkpoint's own signature; call before the first event.
    public func checkCheckpointSignature() throws(Failure) {
        guard let checkpoint else { return }
        if let anchorKey, !checkpoint.hasValidSignature(key: anchorKey) {
            throw Failure(seq: checkpoint.seq, reason: "the checkpoint's signature does not match the audit key")
        }
    }

    /// An anchor must come first: the chain continues from its hash.
    public mutating func start(from anchor: EventAnchor) throws(Failure) {
        if let anchorKey, !anchor.hasValidSignature(key: anchorKey) {
            throw Failure(
                seq: anchor.seq,
                reason: anchor.signature == nil
                    ? "the pruning anchor is unsigned, and a key is configured (a forged anchor hides removed events)"
                    : "the pruning anchor's signature does not match the audit key")
        }
        if let checkpoint, checkpoint.seq == anchor.seq {
            guard constantTimeEqual(checkpoint.hash, anchor.hash) else {
                throw Failure(seq: anchor.seq, reason: "the anchor's hash differs from the checkpoint's")
            }
            checkpointReached = true
        } else if let checkpoint, checkpoint.seq < anchor.seq {
            // Pruned since the checkpoint was taken: the signed anchor stands for that range.
            checkpointReached = true
        }
        previousSeq = anchor.seq
        previousHash = anchor.hash
    }

    public mutating func check(_ event: EventRecord) throws(Failure) {
        let body = event.canonicalBody
        if event.hasPlainLink(body: body) {
            if keyed > 0 {
                throw Failure(
                    seq: event.seq,
                    reason: "an unkeyed event follows keyed ones (the history was rewritten without the chain key)")
            }
            unkeyed += 1
        } else if let chainKey {
            guard constantTimeEqual(EventLog.chainMAC(key: chainKey, prevHash: event.prevHash, body: body), event.hash)
            else {
                throw Failure(seq: event.seq, reason: "content does not match its hash (the event was modified)")
            }
            keyed += 1
        } else {
            throw Failure(
                seq: event.seq,
                reason: "the event is keyed (or was modified): verify with the chain key (audit.chainKey of --config)",
                needsKey: true)
        }
        let expectedSeq = (previousSeq ?? 0) + 1
        let expectedPrev = previousHash ?? EventLog.genesisHash
        if event.seq != expectedSeq || !constantTimeEqual(event.prevHash, expectedPrev) {
            let what =
                event.seq < expectedSeq
                ? "out of order or duplicated (expected seq \(expectedSeq))"
                : event.seq > expectedSeq
                    ? "events before it are missing (expected seq \(expectedSeq))"
                    : "does not chain to the event before it (an event was inserted, removed or reordered)"
            throw Failure(seq: event.seq, reason: what)
        }
        if let checkpoint, checkpoint.seq == event.seq {
            guard constantTimeEqual(checkpoint.hash, event.hash) else {
                throw Failure(
                    seq: event.seq, reason: "the event's hash differs from the checkpoint's (history was rewritten)")
            }
            checkpointReached = true
        }
        previousSeq = event.seq
        previousHash = event.hash
        verified += 1
    }

    /// After the last event: what only the whole history can show.
    public func finish() throws(Failure) {
        if let checkpoint, !checkpointReached {
            throw Failure(
                seq: checkpoint.seq,
                reason: "the history ends at seq \(previousSeq ?? 0), before the checkpoint's seq \(checkpoint.seq) "
                    + "(events after it were removed)")
        }
        if chainKey != nil, keyed == 0, unkeyed > 0 {
            throw Failure(
                seq: previousSeq ?? 0,
                reason: "none of the \(unkeyed) events is keyed although a chain key is given: the history was "
                    + "never served with audit.chainKey, or it was rewritten without it")
        }
    }

    /// "1200 events verified (1000 keyed, 200 unkeyed before the key was set)".
    public var summary: String {
        var text = "\(verified) events verified"
        if keyed > 0, unkeyed > 0 {
            text += " (\(keyed) keyed, \(unkeyed) unkeyed from before the history was keyed)"
        } else if keyed > 0 {
            text += " (keyed)"
        } else if verified > 0 {
            text += " (unkeyed: set audit.chainKey so that a rewrite of the file cannot verify)"
        }
        if checkpoint != nil { text += "; the checkpoint matches" }
        return text
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
                    EventLog.record)
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
