import Crypto
import Foundation
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

    public init(
        seq: Int64, hash: String, at: String, prunedBefore: String, prunedCount: Int, signature: String? = nil
    ) {
        self.seq = seq
        self.hash = hash
        self.at = at
        self.prunedBefore = prunedBefore
        self.prunedCount = prunedCount
        self.signature = signature
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
