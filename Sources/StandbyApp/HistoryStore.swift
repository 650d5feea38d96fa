import Foundation
import StandbyCore
import StandbyPrimitives

/// The history as a store keeps it: reading, exporting and pruning the hash-chained events (a
/// port; each store implements it over its own tables). Verification, checkpoints and preparing
/// the chain for this process's key are the same on every store and written once, below.
public protocol HistoryStore: Sendable {
    /// Oldest first, as history is read.
    func list(_ query: EventQuery) async throws -> Page<EventRecord>
    /// Up to `batchSize` events after `afterSeq`, for streaming exports in constant memory.
    func batch(_ query: EventQuery, afterSeq: Int64, batchSize: Int) async throws -> [EventRecord]
    func count(_ query: EventQuery) async throws -> Int
    func latestAnchor() async throws -> EventAnchor?
    /// The newest event, if any is left.
    func newestEvent() async throws -> EventRecord?
    /// Removes events older than `before`, leaving an anchor (signed when `signingKey` is given)
    /// from which the rest still verifies, and a `history.pruned` event; and, in the same
    /// transaction, the raw signals received before it (deliveries with their bodies, health and
    /// readiness reports), which only those events referred to. Returns how many of each went.
    func prune(before: Date, signingKey: Secret?, now: Date) async throws -> PruneOutcome
    /// How this store chains what it appends (keyed with `audit.chainKey` or not).
    var chain: EventChain { get }
    /// Appends `event` in a transaction of its own.
    func append(_ event: EventDraft) async throws
}

extension HistoryStore {
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
        if let event = try await newestEvent() { return (event.seq, event.hash) }
        return try await latestAnchor().map { ($0.seq, $0.hash) }
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
    public func prepareChain(now: Date) async throws {
        let head = try await newestEvent()
        let headIsUnkeyed = head.map { $0.hasPlainLink(body: $0.canonicalBody) }
        guard chain.isKeyed else {
            if headIsUnkeyed == false {
                throw StoreError.keyRequired(
                    "the history is keyed (its newest event, seq \(head?.seq ?? 0), is not plain SHA-256); "
                        + "set audit.chainKey to the key it was written with")
            }
            return
        }
        guard headIsUnkeyed ?? true else { return }
        try await append(
            EventDraft(
                type: EventLog.keyedBoundaryType, at: now, actor: "standby",
                data: .object([
                    "algorithm": .string("HMAC-SHA256"),
                    "unkeyedThroughSeq": .number(Double(head?.seq ?? 0)),
                ])))
    }

    /// The line of history a prune leaves, chained after the remaining events.
    public static func prunedEvent(
        _ outcome: PruneOutcome, throughSeq seq: Int64, before cutoff: String, signed: Bool, at: Date
    )
        -> EventDraft
    {
        EventDraft(
            type: "history.pruned", at: at, actor: "operator",
            data: .object([
                "throughSeq": .number(Double(seq)), "count": .number(Double(outcome.events)), "before": .string(cutoff),
                "signed": .bool(signed), "deliveries": .number(Double(outcome.deliveries)),
                "healthReports": .number(Double(outcome.healthReports)),
                "readinessReports": .number(Double(outcome.readinessReports)),
            ]))
    }
}

/// What a prune removed: events, and the raw signals received before the same date.
public struct PruneOutcome: Sendable, Hashable {
    public var events = 0
    public var deliveries = 0
    public var healthReports = 0
    public var readinessReports = 0

    public init() {}

    /// "120 events, 40 deliveries, 75 health reports, 3 readiness reports".
    public var description: String {
        "\(events) events, \(deliveries) deliveries, \(healthReports) health reports, \(readinessReports) readiness reports"
    }
}
