import Crypto
import Foundation
import GRDB
import StandbyCore
import StandbyPrimitives

/// One line of history, before it is chained and numbered.
public struct EventDraft: Sendable, Hashable {
    public var type: String
    public var at: Date
    public var deploymentId: String?
    public var hub: String?
    public var actor: String
    public var data: JSONValue

    public init(
        type: String, at: Date, deploymentId: String? = nil, hub: String? = nil, actor: String,
        data: JSONValue
    ) {
        self.type = type
        self.at = at
        self.deploymentId = deploymentId
        self.hub = hub
        self.actor = actor
        self.data = data
    }
}

/// A stored line of history.
public struct EventRecord: Sendable, Hashable, Codable {
    public var seq: Int64
    public var at: String
    public var type: String
    public var deploymentId: String?
    public var hub: String?
    public var actor: String
    public var data: JSONValue
    public var prevHash: String
    public var hash: String
}

/// How this process chains the events it appends: keyed (HMAC-SHA256 under `audit.chainKey`) or
/// not. Every write path appends through the chain of its `StandbyDatabase`.
public struct EventChain: Sendable {
    public let key: SymmetricKey?

    /// Appends with plain SHA-256 links (no `audit.chainKey`).
    public static let unkeyed = EventChain(key: nil)

    public init(key: Secret?) {
        self.key = key.map { SymmetricKey(data: Data($0.value.utf8)) }
    }

    public var isKeyed: Bool { key != nil }

    /// Appends `draft` inside the caller's write transaction; returns its seq.
    @discardableResult
    public func append(_ draft: EventDraft, in db: Database) throws -> Int64 {
        try EventLog.append(draft, in: db, key: key)
    }
}

extension EventRecord {
    /// The bytes its hash covers.
    var canonicalBody: Data {
        EventLog.canonicalBody(
            seq: seq, at: at, type: type, deploymentId: deploymentId, hub: hub, actor: actor, data: data)
    }

    /// Whether its hash is the plain SHA-256 link (written without a chain key) of its content.
    func hasPlainLink(body: Data) -> Bool {
        constantTimeEqual(EventLog.chainHash(prevHash: prevHash, body: body), hash)
    }
}

/// The append-only, hash-chained event history. Appends happen inside the caller's write
/// transaction, so an event exists exactly when the change it describes was committed.
public enum EventLog {
    public static let genesisHash = String(repeating: "0", count: 64)

    /// The bytes hashed for an event: its canonical JSON without `hash` and `prevHash`.
    public static func canonicalBody(
        seq: Int64, at: String, type: String, deploymentId: String?, hub: String?, actor: String, data: JSONValue
    ) -> Data {
        Data(
            canonicalBody(
                seq: seq, at: at, type: type, deploymentId: deploymentId, hub: hub, actor: actor,
                canonicalData: data.canonicalBytes()))
    }

    /// The same bytes as `JSONValue.object([...]).canonicalData()`, written directly (keys in
    /// their sorted order) around `data` already in canonical form: it runs for every event.
    static func canonicalBody(
        seq: Int64, at: String, type: String, deploymentId: String?, hub: String?, actor: String,
        canonicalData: [UInt8]
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(canonicalData.count + 160)
        func member(_ key: String, first: Bool = false) {
            out.append(contentsOf: (first ? "{\"" : ",\"").utf8)
            out.append(contentsOf: key.utf8)
            out.append(contentsOf: "\":".utf8)
        }
        func optional(_ text: String?) {
            if let text { JSONValue.writeString(text, into: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        member("actor", first: true)
        JSONValue.writeString(actor, into: &out)
        member("at")
        JSONValue.writeString(at, into: &out)
        member("data")
        out.append(contentsOf: canonicalData)
        member("deploymentId")
        optional(deploymentId)
        member("hub")
        optional(hub)
        member("seq")
        out.append(contentsOf: JSONValue.format(Double(seq)).utf8)
        member("type")
        JSONValue.writeString(type, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The unkeyed link: SHA-256 of the previous hash and the body. Histories written before
    /// `audit.chainKey` existed (or without it) are chained so.
    public static func chainHash(prevHash: String, body: some DataProtocol) -> String {
        var hasher = SHA256()
        hasher.update(data: Data(prevHash.utf8))
        hasher.update(data: body)
        return hexString(hasher.finalize())
    }

    /// The keyed link: HMAC-SHA256 under the chain key of the previous hash and the body. Without
    /// the key nobody can recompute it, so a rewritten event cannot be made to verify.
    public static func chainMAC(key: SymmetricKey, prevHash: String, body: some DataProtocol) -> String {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Data(prevHash.utf8))
        mac.update(data: body)
        return hexString(mac.finalize())
    }

    /// The event type that marks where a history became keyed: it and every event after it are
    /// chained with `chainMAC`, the events before it (written without a key) with `chainHash`.
    public static let keyedBoundaryType = "history.keyed"

    @discardableResult
    static func append(_ draft: EventDraft, in db: Database, key: SymmetricKey?) throws -> Int64 {
        // After a prune removed every event, the chain continues from the anchor.
        let (lastSeq, prevHash) =
            try chainHead(try db.cachedStatement(sql: "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"))
            ?? chainHead(try db.cachedStatement(sql: "SELECT seq, hash FROM event_anchors ORDER BY seq DESC LIMIT 1"))
            ?? (0, genesisHash)
        let seq = lastSeq + 1
        let at = Timestamp.format(draft.at)
        let data = draft.data.canonicalBytes()
        let body = canonicalBody(
            seq: seq, at: at, type: draft.type, deploymentId: draft.deploymentId, hub: draft.hub,
            actor: draft.actor, canonicalData: data)
        try db.cachedStatement(
            sql: """
                INSERT INTO events (seq, at, type, deployment_id, hub, actor, data, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            seq, at, draft.type, draft.deploymentId, draft.hub, draft.actor, String(decoding: data, as: UTF8.self),
            prevHash,
            key.map { chainMAC(key: $0, prevHash: prevHash, body: body) }
                ?? chainHash(prevHash: prevHash, body: body),
        ])
        return seq
    }

    /// Reads the row in place, by position: this runs for every event appended. The row is a view
    /// of the statement, which the cursor resets when it goes, hence the cursor's extended lifetime.
    private static func chainHead(_ statement: Statement) throws -> (seq: Int64, hash: String)? {
        let cursor = try Row.fetchCursor(statement)
        return try withExtendedLifetime(cursor) {
            guard let row = try cursor.next() else { return nil }
            return (row[0], row[1])
        }
    }

    static func record(_ row: Row) -> EventRecord {
        let dataText: String = row["data"]
        return EventRecord(
            seq: row["seq"], at: row["at"], type: row["type"], deploymentId: row["deployment_id"], hub: row["hub"],
            actor: row["actor"], data: JSONValue.parse(dataText) ?? .string(dataText), prevHash: row["prev_hash"],
            hash: row["hash"])
    }
}

extension Data {
    /// Lower-case hex SHA-256 of these bytes.
    public var sha256Hex: String {
        hexString(SHA256.hash(data: self))
    }
}
