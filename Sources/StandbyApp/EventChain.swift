import Crypto
import Foundation
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

    public init(
        seq: Int64, at: String, type: String, deploymentId: String? = nil, hub: String? = nil, actor: String,
        data: JSONValue, prevHash: String, hash: String
    ) {
        self.seq = seq
        self.at = at
        self.type = type
        self.deploymentId = deploymentId
        self.hub = hub
        self.actor = actor
        self.data = data
        self.prevHash = prevHash
        self.hash = hash
    }
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
}

extension EventRecord {
    /// The bytes its hash covers.
    public var canonicalBody: Data {
        EventLog.canonicalBody(
            seq: seq, at: at, type: type, deploymentId: deploymentId, hub: hub, actor: actor, data: data)
    }

    /// Whether its hash is the plain SHA-256 link (written without a chain key) of its content.
    public func hasPlainLink(body: Data) -> Bool {
        constantTimeEqual(EventLog.chainHash(prevHash: prevHash, body: body), hash)
    }
}

/// How events are chained: the canonical bytes an event's hash covers and the two kinds of link.
/// Every store appends with these, inside the write transaction of the change an event describes.
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
        let parts = canonicalBodyParts(
            at: at, type: type, deploymentId: deploymentId, hub: hub, actor: actor, canonicalData: canonicalData)
        return canonicalBody(seq: seq, parts)
    }

    /// The canonical body without `seq`: the bytes before its value and after it (`seq` sorts
    /// between `hub` and `type`), which do not depend on where the event lands in the chain.
    static func canonicalBodyParts(
        at: String, type: String, deploymentId: String?, hub: String?, actor: String, canonicalData: [UInt8]
    ) -> (beforeSeq: [UInt8], afterSeq: [UInt8]) {
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
        var after = Array(",\"type\":".utf8)
        JSONValue.writeString(type, into: &after)
        after.append(UInt8(ascii: "}"))
        return (out, after)
    }

    static func canonicalBody(seq: Int64, _ parts: (beforeSeq: [UInt8], afterSeq: [UInt8])) -> [UInt8] {
        parts.beforeSeq + Array(JSONValue.format(Double(seq)).utf8) + parts.afterSeq
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

}

extension Data {
    /// Lower-case hex SHA-256 of these bytes.
    public var sha256Hex: String {
        hexString(SHA256.hash(data: self))
    }
}

/// An event as a store appends it, before it is numbered and linked: everything of its
/// canonical body that does not depend on its place in the chain is written already. A store that
/// chains its events under a lock at the commit makes these when they are appended, so that what
/// is left under the lock is the numbering and the hash.
public struct UnlinkedEvent: Sendable {
    public let draft: EventDraft
    /// Its data as the canonical JSON text the hash covers (what a store writes in `data`).
    public let dataText: String
    let at: String
    let body: (beforeSeq: [UInt8], afterSeq: [UInt8])

    public init(_ draft: EventDraft) {
        self.draft = draft
        at = Timestamp.format(draft.at)
        let data = draft.data.canonicalBytes()
        dataText = String(decoding: data, as: UTF8.self)
        body = EventLog.canonicalBodyParts(
            at: at, type: draft.type, deploymentId: draft.deploymentId, hub: draft.hub, actor: draft.actor,
            canonicalData: data)
    }
}

extension EventChain {
    /// An event ready to store: `draft` numbered `seq` and linked to `prevHash`, with its data as
    /// the canonical JSON text the hash covers (what a store writes in the `data` column).
    public func link(_ draft: EventDraft, seq: Int64, prevHash: String) -> (event: EventRecord, dataText: String) {
        link(UnlinkedEvent(draft), seq: seq, prevHash: prevHash)
    }

    public func link(_ unlinked: UnlinkedEvent, seq: Int64, prevHash: String) -> (event: EventRecord, dataText: String)
    {
        let draft = unlinked.draft
        let body = EventLog.canonicalBody(seq: seq, unlinked.body)
        let hash =
            key.map { EventLog.chainMAC(key: $0, prevHash: prevHash, body: body) }
            ?? EventLog.chainHash(prevHash: prevHash, body: body)
        let event = EventRecord(
            seq: seq, at: unlinked.at, type: draft.type, deploymentId: draft.deploymentId, hub: draft.hub,
            actor: draft.actor, data: draft.data, prevHash: prevHash, hash: hash)
        return (event, unlinked.dataText)
    }
}
