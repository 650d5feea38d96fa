import Foundation
import StandbyCore
import StandbyPrimitives

public enum DrillStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Declared, not yet started (a drill starts when it is declared today; kept for the contract).
    case scheduled
    case running
    case completed
    case aborted
}

/// A drill as `GET /v1/drills/{id}` shows it, with its measured times.
public struct DrillView: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    public var status: DrillStatus
    /// `failing_over`, `holding` or `failing_back` while running.
    public var phase: String?
    public var reason: String
    public var holdForSeconds: Double
    public var interruptJobs: Bool
    public var createdBy: String
    public var createdAt: String
    public var fromHub: String
    public var toHub: String
    public var failoverEventId: String
    public var failbackEventId: String?
    public var failoverDecidedAt: String
    public var failoverAcknowledgedAt: String?
    public var holdUntil: String?
    public var failbackDecidedAt: String?
    public var failbackAcknowledgedAt: String?
    public var finishedAt: String?
    public var abortReason: String?
    /// From the failover's decision to all its commands acknowledged.
    public var recoverySeconds: Double?
    /// From the failback's decision to all its commands acknowledged.
    public var failbackRecoverySeconds: Double?
    public var updatedAt: String

    public init(_ drill: DrillState, deploymentId: String, request: DrillRequest, now: Date) {
        let at = Timestamp.format(now)
        id = drill.id
        self.deploymentId = deploymentId
        status = .running
        phase = drill.phase.rawValue
        reason = request.reason
        holdForSeconds = request.holdFor
        interruptJobs = request.interruptJobs
        createdBy = request.actor
        createdAt = at
        fromHub = drill.fromHub
        toHub = drill.toHub
        failoverEventId = drill.failoverEventId
        failoverDecidedAt = at
        updatedAt = at
    }

    /// Records what the drill did at `now`.
    mutating func record(_ change: DrillChange, now: Date) {
        let at = Timestamp.format(now)
        updatedAt = at
        switch change {
        case .holding(_, let until):
            phase = DrillState.Phase.holding.rawValue
            failoverAcknowledgedAt = at
            holdUntil = Timestamp.format(until)
            recoverySeconds = Timestamp.parse(failoverDecidedAt).map { now.timeIntervalSince($0) }
        case .failingBack(_, let eventId, let abortReason):
            phase = DrillState.Phase.failingBack.rawValue
            failbackEventId = eventId
            failbackDecidedAt = at
            self.abortReason = abortReason
        case .finished(_, let completed, let reason):
            phase = nil
            status = completed ? .completed : .aborted
            finishedAt = at
            if reason != nil { abortReason = reason }
            if failbackEventId != nil, failbackAcknowledgedAt == nil, completed || reason == abortReason {
                failbackAcknowledgedAt = at
                failbackRecoverySeconds = failbackDecidedAt.flatMap(Timestamp.parse).map { now.timeIntervalSince($0) }
            }
        }
    }
}

extension DrillView {
    /// The JSON both stores keep a drill's record as.
    public static func encoded(_ drill: DrillView) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(drill), as: UTF8.self)
    }

    public static func decoded(_ text: String) throws -> DrillView {
        try JSONDecoder().decode(DrillView.self, from: Data(text.utf8))
    }
}
