import Foundation
import StandbyCore
import StandbyPrimitives

// Training jobs and their resubmission queue, as the API and the store speak of them.

public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case running
    case completed
    case failed
    case cancelled
    case interrupted

    /// The moves `PATCH /v1/jobs/{id}` may make.
    public func canMove(to next: JobStatus) -> Bool {
        switch (self, next) {
        case (.running, .completed), (.running, .failed), (.running, .cancelled): return true
        case (.interrupted, .cancelled): return true
        default: return false
        }
    }
}

public enum ResubmissionStatus: String, Sendable, Codable, CaseIterable {
    case queued
    case leased
    case completed
    case dead
    case cancelled
    /// Interrupted in a single-region deployment: nowhere to go until an operator retargets it.
    case unassigned
}

public struct JobRegistration: Sendable, Hashable {
    public var externalId: String
    public var deploymentId: String
    public var hubId: String
    public var spec: JSONValue
    public var status: JobStatus
    public var priority: Int
    public var submittedAt: Date?

    public init(
        externalId: String, deploymentId: String, hubId: String, spec: JSONValue, status: JobStatus, priority: Int,
        submittedAt: Date?
    ) {
        self.externalId = externalId
        self.deploymentId = deploymentId
        self.hubId = hubId
        self.spec = spec
        self.status = status
        self.priority = priority
        self.submittedAt = submittedAt
    }
}

public struct JobView: Sendable, Hashable, Codable {
    public var id: String
    public var externalId: String
    public var deploymentId: String
    public var hub: String
    public var spec: JSONValue
    public var status: JobStatus
    public var priority: Int
    public var submittedAt: String?
    public var interruptedBy: String?
    public var resubmittedFrom: String?
    public var registeredBy: String
    public var createdAt: String
    public var updatedAt: String

    public init(
        id: String, externalId: String, deploymentId: String, hub: String, spec: JSONValue, status: JobStatus,
        priority: Int, submittedAt: String? = nil, interruptedBy: String? = nil, resubmittedFrom: String? = nil,
        registeredBy: String, createdAt: String, updatedAt: String
    ) {
        self.id = id
        self.externalId = externalId
        self.deploymentId = deploymentId
        self.hub = hub
        self.spec = spec
        self.status = status
        self.priority = priority
        self.submittedAt = submittedAt
        self.interruptedBy = interruptedBy
        self.resubmittedFrom = resubmittedFrom
        self.registeredBy = registeredBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

public struct ResubmissionView: Sendable, Hashable, Codable {
    public var id: String
    public var jobId: String
    public var externalId: String
    public var failoverEventId: String
    public var deploymentId: String
    public var fromHub: String
    public var targetHub: String?
    public var priority: Int
    public var status: ResubmissionStatus
    public var attempts: Int
    public var maxAttempts: Int
    public var availableAt: String
    public var leaseOwner: String?
    public var leaseExpiresAt: String?
    public var lastError: String?
    public var newJobId: String?
    public var createdAt: String
    public var updatedAt: String
    /// The job's spec, so that a worker can resubmit it without another call.
    public var spec: JSONValue?

    public init(
        id: String, jobId: String, externalId: String, failoverEventId: String, deploymentId: String, fromHub: String,
        targetHub: String? = nil, priority: Int, status: ResubmissionStatus, attempts: Int, maxAttempts: Int,
        availableAt: String, leaseOwner: String? = nil, leaseExpiresAt: String? = nil, lastError: String? = nil,
        newJobId: String? = nil, createdAt: String, updatedAt: String, spec: JSONValue? = nil
    ) {
        self.id = id
        self.jobId = jobId
        self.externalId = externalId
        self.failoverEventId = failoverEventId
        self.deploymentId = deploymentId
        self.fromHub = fromHub
        self.targetHub = targetHub
        self.priority = priority
        self.status = status
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.availableAt = availableAt
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.lastError = lastError
        self.newJobId = newJobId
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.spec = spec
    }
}

public struct QueueSettings: Sendable, Hashable {
    public var maxAttempts = 5
    public var baseBackoff: TimeInterval = 5
    public var maxBackoff: TimeInterval = 600
    /// Backoff is multiplied by a random factor in 1 ± jitter, so that failing workers spread out.
    public var jitter = 0.2
    public var maxLease: TimeInterval = 3600
    public init() {}

    public func backoff(afterAttempt attempt: Int, random: Double) -> TimeInterval {
        Backoff(base: baseBackoff, maximum: maxBackoff, jitter: jitter).delay(afterAttempt: attempt, random: random)
    }
}
