import Foundation
import OpenAPIRuntime
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The application layer's read models filled into the types swift-openapi-generator made from
// openapi/standby.yaml, member by member: one type per concept on each side, no JSON round trip.
// A value outside the contract's enumerations is a bug of this server, never of the request.

/// A view that does not fit the contract.
struct ContractDrift: Error, CustomStringConvertible {
    var description: String
}

/// The generated enumeration case of `raw`.
func contractCase<T: RawRepresentable>(_ raw: String, _ type: T.Type = T.self) throws -> T where T.RawValue == String {
    guard let value = T(rawValue: raw) else {
        throw ContractDrift(description: "\(T.self) has no case \"\(raw)\"")
    }
    return value
}

extension JSONValue {
    /// The value as the OpenAPI runtime holds free-form JSON.
    var untyped: (any Sendable)? {
        switch self {
        case .null: return nil
        case .bool(let value): return value
        // A whole number is written as one (`1`, not `1.0`), as the document it came from had it.
        case .number(let value):
            if value == value.rounded(), abs(value) < 9.0e15 { return Int(value) }
            return value
        case .string(let value): return value
        case .array(let values): return values.map(\.untyped)
        case .object(let members): return members.mapValues(\.untyped)
        }
    }

    var openAPIValue: OpenAPIValueContainer {
        get throws { try OpenAPIValueContainer(unvalidatedValue: untyped) }
    }
}

/// Free-form members with their nil ones left out, as a synthesised encoder leaves them out.
private func members(_ pairs: [(String, (any Sendable)?)]) -> [String: (any Sendable)?] {
    var members: [String: (any Sendable)?] = [:]
    for (key, value) in pairs where value != nil { members[key] = value }
    return members
}

extension ServiceHealthDetails {
    var openAPIObject: OpenAPIObjectContainer {
        get throws {
            try OpenAPIObjectContainer(
                unvalidatedValue: members([
                    ("incidentType", incidentType), ("trackingId", trackingId), ("stage", stage), ("title", title),
                    ("communicationId", communicationId),
                    (
                        "impactedServices",
                        impactedServices.map {
                            ["service": $0.service, "regions": $0.regions] as [String: any Sendable]
                        }
                    ),
                ]))
        }
    }
}

extension ResourceHealthDetails {
    var openAPIObject: OpenAPIObjectContainer {
        get throws {
            try OpenAPIObjectContainer(
                unvalidatedValue: members([
                    ("currentHealthStatus", currentHealthStatus), ("previousHealthStatus", previousHealthStatus),
                    ("cause", cause), ("type", type), ("title", title),
                ]))
        }
    }
}

extension Components.Schemas.HubReference {
    init(_ hub: HubReference) {
        self.init(deploymentId: hub.deploymentId, hubId: hub.hubId)
    }
}

extension Components.Schemas.Alert {
    init(_ view: AlertView) throws {
        self.init(
            id: view.id, key: view.key, status: try contractCase(view.status.rawValue),
            azureAlertId: view.azureAlertId, rule: view.rule, severity: view.severity, signalType: view.signalType,
            monitoringService: view.monitoringService, schema: view.schema, kind: view.kind,
            condition: try view.condition.map { try contractCase($0.rawValue) },
            targetResourceIds: view.targetResourceIds, hubs: view.hubs.map(Components.Schemas.HubReference.init),
            firedAt: view.firedAt, resolvedAt: view.resolvedAt, observedAt: view.observedAt,
            description: view.description, isTest: view.isTest, serviceHealth: try view.serviceHealth?.openAPIObject,
            resourceHealth: try view.resourceHealth?.openAPIObject, reason: view.reason,
            deliveryCount: view.deliveryCount, duplicateCount: view.duplicateCount, createdAt: view.createdAt,
            updatedAt: view.updatedAt,
            deliveries: view.deliveries?.map {
                .init(
                    id: $0.id, receivedAt: $0.receivedAt, remoteAddress: $0.remoteAddress,
                    contentType: $0.contentType, outcome: $0.outcome.rawValue, sha256: $0.sha256, bytes: $0.bytes)
            },
            raw: try view.raw?.openAPIValue, rawBase64: view.rawBase64)
    }
}

extension Components.Schemas.Source {
    init(_ view: SourceView) throws {
        self.init(
            source: view.source, kind: try contractCase(view.kind), state: try contractCase(view.state.rawValue),
            lastObservedAt: view.lastObservedAt, consecutiveFailures: view.consecutiveFailures,
            consecutiveSuccesses: view.consecutiveSuccesses, rule: view.rule, label: view.label,
            evidence: view.evidence)
    }
}

extension Components.Schemas.FailureWindow {
    init(_ view: FailureWindowView) {
        self.init(
            id: view.id, deploymentId: view.deploymentId, hubId: view.hubId, open: view.open, openedAt: view.openedAt,
            firstFailureAt: view.firstFailureAt, lastFailureAt: view.lastFailureAt, failureCount: view.failureCount,
            sources: view.sources, evidence: view.evidence, declaredDownAt: view.declaredDownAt,
            closedAt: view.closedAt)
    }
}

extension Components.Schemas.Hub {
    init(_ view: HubView) throws {
        self.init(
            id: view.id, region: view.region, regionName: view.regionName, role: try contractCase(view.role.rawValue),
            endpoint: view.endpoint, serving: view.serving, health: try contractCase(view.health.rawValue),
            healthSince: view.healthSince, sources: try view.sources.map(Components.Schemas.Source.init),
            openWindow: view.openWindow.map(Components.Schemas.FailureWindow.init),
            readiness: try view.readiness.map { check in
                Components.Schemas.Readiness(
                    check: try contractCase(check.check), status: try contractCase(check.status.rawValue),
                    detail: check.detail, observedAt: check.observedAt)
            })
    }
}

extension Components.Schemas.Deployment {
    init(_ view: DeploymentView) throws {
        let automation = view.automation
        self.init(
            id: view.id, pattern: try contractCase(view.pattern.rawValue), serving: view.serving,
            automation: .init(
                state: try contractCase(automation.state), reason: automation.reason, paused: automation.paused,
                dryRun: automation.dryRun, failbackReady: automation.failbackReady,
                openFailoverEventId: automation.openFailoverEventId,
                automaticMovesLastHour: automation.automaticMovesLastHour, lastMoveAt: automation.lastMoveAt,
                pausedUntil: automation.pausedUntil, maintenanceWindows: automation.maintenanceWindows),
            hubs: try view.hubs.map(Components.Schemas.Hub.init),
            lastFailover: try view.lastFailover.map(Components.Schemas.FailoverEvent.init))
    }
}

extension Components.Schemas.Command {
    init(_ view: CommandView) throws {
        self.init(
            id: view.id, deploymentId: view.deploymentId, failoverEventId: view.failoverEventId,
            position: view.position, kind: try contractCase(view.kind), hub: view.hub, fromHub: view.fromHub,
            toHub: view.toHub, parameters: .init(additionalProperties: view.parameters),
            status: try contractCase(view.status.rawValue), createdAt: view.createdAt, updatedAt: view.updatedAt,
            ackOutcome: view.ackOutcome, ackDetail: view.ackDetail, ackActor: view.ackActor, ackedAt: view.ackedAt,
            deliveryAttempts: view.deliveryAttempts, lastError: view.lastError)
    }
}

extension Components.Schemas.FailoverEvent {
    init(_ view: FailoverEventView) throws {
        self.init(
            id: view.id, deploymentId: view.deploymentId, kind: try contractCase(view.kind),
            trigger: try contractCase(view.trigger), fromHub: view.fromHub, toHub: view.toHub, reason: view.reason,
            rule: view.rule, evidence: view.evidence, actor: view.actor, dryRun: view.dryRun,
            status: try contractCase(view.status.rawValue), createdAt: view.createdAt, settledAt: view.settledAt,
            commands: try view.commands.map(Components.Schemas.Command.init))
    }
}

extension Components.Schemas.Job {
    init(_ view: JobView) throws {
        self.init(
            id: view.id, externalId: view.externalId, deploymentId: view.deploymentId, hub: view.hub,
            spec: try view.spec.openAPIValue, status: try contractCase(view.status.rawValue), priority: view.priority,
            submittedAt: view.submittedAt, interruptedBy: view.interruptedBy, resubmittedFrom: view.resubmittedFrom,
            registeredBy: view.registeredBy, createdAt: view.createdAt, updatedAt: view.updatedAt)
    }
}

extension Components.Schemas.Resubmission {
    init(_ view: ResubmissionView) throws {
        self.init(
            id: view.id, jobId: view.jobId, externalId: view.externalId, failoverEventId: view.failoverEventId,
            deploymentId: view.deploymentId, fromHub: view.fromHub, targetHub: view.targetHub,
            priority: view.priority, status: try contractCase(view.status.rawValue), attempts: view.attempts,
            maxAttempts: view.maxAttempts, availableAt: view.availableAt, leaseOwner: view.leaseOwner,
            leaseExpiresAt: view.leaseExpiresAt, lastError: view.lastError, newJobId: view.newJobId,
            createdAt: view.createdAt, updatedAt: view.updatedAt, spec: try view.spec?.openAPIValue)
    }
}

extension Components.Schemas.Event {
    init(_ event: EventRecord) throws {
        self.init(
            seq: Int(event.seq), at: event.at, _type: event.type, deploymentId: event.deploymentId, hub: event.hub,
            actor: event.actor, data: try event.data.openAPIValue, prevHash: event.prevHash, hash: event.hash)
    }
}
