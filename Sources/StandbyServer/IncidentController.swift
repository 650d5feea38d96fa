import Foundation
import Hummingbird
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// Maintenance windows (`/v1/maintenance-windows`) and the notification outbox
/// (`GET /v1/notifications`).
struct IncidentController {
    static let maximumWindow: TimeInterval = 31 * 86_400

    let controlPlane: ControlPlane
    let topology: Topology
    let timeSource: any TimeSource

    var readEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.get("maintenance-windows", use: listWindows)
        routes.get("maintenance-windows/:id", use: getWindow)
        routes.get("notifications", use: listNotifications)
        return routes
    }

    var operatorEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post("maintenance-windows", use: scheduleWindow)
        routes.delete("maintenance-windows/:id", use: endWindow)
        return routes
    }

    // MARK: Maintenance windows

    @Sendable func scheduleWindow(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let body = try await JSONBody(request, limit: 16 * 1024)
        let deploymentId = try body.string("deployment", maximum: 200)
        guard let deployment = topology.deployment(deploymentId) else {
            throw Problem.unprocessable("unknown deployment \"\(deploymentId)\"", field: "deployment")
        }
        var hubs: [String] = []
        if let value = body.document.objectValue?["hubs"], value != .null {
            guard let items = value.arrayValue, items.count <= 64 else {
                throw Problem.unprocessable("hubs must be a list of hub ids", field: "hubs")
            }
            for item in items {
                guard let hub = item.stringValue, deployment.hub(hub) != nil else {
                    throw Problem.unprocessable("hubs must name hubs of \(deploymentId)", field: "hubs")
                }
                if !hubs.contains(hub) { hubs.append(hub) }
            }
        }
        let startsAt = try date(body, "startsAt")
        let endsAt = try date(body, "endsAt")
        guard endsAt > startsAt else { throw Problem.unprocessable("endsAt must be after startsAt", field: "endsAt") }
        guard endsAt.timeIntervalSince(startsAt) <= Self.maximumWindow else {
            throw Problem.unprocessable("a window lasts at most 31 days", field: "endsAt")
        }
        let now = timeSource.now()
        guard endsAt > now else { throw Problem.unprocessable("endsAt is in the past", field: "endsAt") }
        let reason = try body.string("reason", maximum: 1000)
        let (window, created) = try await controlPlane.scheduleMaintenance(
            MaintenanceRequest(
                deploymentId: deploymentId, hubs: hubs, startsAt: startsAt, endsAt: endsAt, reason: reason),
            actor: context.actor, now: now)
        return try JSONResponse(
            status: created ? .created : .ok, body: Self.json(window, source: .api, deployment: deployment, now: now)
        ).response(from: request, context: context)
    }

    @Sendable func endWindow(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let now = timeSource.now()
        if id.hasPrefix("config:") || id.contains("@") {
            throw Problem.conflict("\(id) is declared in the config; change the config to end it")
        }
        let window = try await controlPlane.endMaintenance(id: id, actor: context.actor, now: now)
        return try JSONResponse(
            body: Self.json(window, source: .api, deployment: topology.deployment(window.deploymentId), now: now)
        )
        .response(from: request, context: context)
    }

    @Sendable func getWindow(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let now = timeSource.now()
        guard let window = try await controlPlane.maintenanceWindow(id: id) else {
            throw Problem.notFound("maintenance window \(id) not found")
        }
        return try JSONResponse(
            body: Self.json(window, source: .api, deployment: topology.deployment(window.deploymentId), now: now)
        )
        .response(from: request, context: context)
    }

    @Sendable func listWindows(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let query = QueryReader(request)
        let active = try query.string("active").map { text -> Bool in
            guard let value = Bool(text) else {
                throw Problem.badRequest("active must be true or false", field: "active")
            }
            return value
        }
        let now = timeSource.now()
        let page = try await controlPlane.maintenanceWindows(
            deploymentId: query.string("deployment"), active: active, now: now, page: try query.page())
        let items = page.items.map {
            Self.json($0.window, source: $0.source, deployment: topology.deployment($0.window.deploymentId), now: now)
        }
        return try JSONResponse(body: Self.page(items, next: page.next))
            .response(from: request, context: context)
    }

    /// A listing as every listing reads: `next` only when there is a next page.
    static func page(_ items: [JSONValue], next: String?) -> JSONValue {
        var object: [String: JSONValue] = ["items": .array(items)]
        if let next { object["next"] = .string(next) }
        return .object(object)
    }

    private func date(_ body: JSONBody, _ key: String) throws -> Date {
        let text = try body.string(key, maximum: 64)
        guard let date = Timestamp.parse(text) else {
            throw Problem.unprocessable("\(key) must be an ISO-8601 timestamp such as 2026-12-05T02:00:00Z", field: key)
        }
        return date
    }

    static func json(
        _ window: MaintenanceWindow, source: MaintenanceSource, deployment: DeploymentDefinition?, now: Date
    ) -> JSONValue {
        .object([
            "id": .string(window.id), "deployment": .string(window.deploymentId),
            "hubs": .strings(deployment.map(window.coveredHubs(of:)) ?? window.hubs),
            "allHubs": .bool(window.hubs.isEmpty),
            "startsAt": .string(Timestamp.format(window.startsAt)), "endsAt": .string(Timestamp.format(window.endsAt)),
            "endedAt": .optional(window.endedAt.map(Timestamp.format)), "reason": .string(window.reason),
            "createdBy": .string(window.createdBy), "createdAt": .string(Timestamp.format(window.createdAt)),
            "active": .bool(window.isActive(at: now)), "source": .string(source.rawValue),
        ])
    }

    // MARK: Notifications

    @Sendable func listNotifications(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let query = QueryReader(request)
        let page = try await controlPlane.notifications(
            status: try query.choice("status", as: NotificationStatus.self), deploymentId: query.string("deployment"),
            page: try query.page())
        return try JSONResponse(
            body: Self.page(page.items.map(Self.json), next: page.next)
        ).response(from: request, context: context)
    }

    static func json(_ notification: NotificationView) -> JSONValue {
        .object([
            "id": .string(notification.id), "receiver": .string(notification.receiver),
            "event": .string(notification.event.rawValue), "deployment": .string(notification.deploymentId),
            "incidentKey": .string(notification.incidentKey), "action": .string(notification.action.rawValue),
            "severity": .string(notification.severity.rawValue), "summary": .string(notification.summary),
            "details": .object(notification.details.mapValues(JSONValue.string)),
            "occurredAt": .string(notification.occurredAt), "status": .string(notification.status.rawValue),
            "attempts": .number(Double(notification.attempts)), "nextAttemptAt": .optional(notification.nextAttemptAt),
            "lastError": .optional(notification.lastError), "deliveredAt": .optional(notification.deliveredAt),
            "createdAt": .string(notification.createdAt),
        ])
    }
}

extension DrillView: ResponseEncodable {}
extension AvailabilityReport: ResponseEncodable {}
extension Page: ResponseEncodable {}

/// Drills (`/v1/deployments/{id}/drills`, `/v1/drills`) and the availability report
/// (`GET /v1/deployments/{id}/availability`).
struct DrillsController {
    static let maximumHold: TimeInterval = 86_400
    static let defaultReportPeriod: TimeInterval = 30 * 86_400
    static let maximumReportPeriod: TimeInterval = 400 * 86_400

    let controlPlane: ControlPlane
    let history: any HistoryStore
    let topology: Topology
    let timeSource: any TimeSource

    var readEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.get("drills", use: list)
        routes.get("drills/:id", use: get)
        routes.get("deployments/:id/availability", use: availability)
        return routes
    }

    var operatorEndpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post("deployments/:id/drills", use: start)
        routes.post("drills/:id/abort", use: abort)
        return routes
    }

    @Sendable func start(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let deploymentId = try context.parameters.require("id")
        guard topology.deployment(deploymentId) != nil else {
            throw Problem.notFound("no deployment with id \(deploymentId)")
        }
        let body = try await JSONBody(request, limit: 16 * 1024)
        let reason = try body.string("reason", maximum: 1000)
        let holdText = try body.optionalString("holdFor") ?? "10m"
        guard let holdFor = ConfigLoader.parseDuration(holdText), holdFor >= 1, holdFor <= Self.maximumHold else {
            throw Problem.unprocessable("holdFor must be a duration from 1s to 24h, such as 10m", field: "holdFor")
        }
        var interruptJobs = false
        if let value = body.document.objectValue?["interruptJobs"], value != .null {
            guard let flag = value.boolValue else {
                throw Problem.unprocessable("interruptJobs must be true or false", field: "interruptJobs")
            }
            interruptJobs = flag
        }
        let drill = try await controlPlane.startDrill(
            deploymentId: deploymentId,
            request: DrillRequest(reason: reason, actor: context.actor, holdFor: holdFor, interruptJobs: interruptJobs),
            now: timeSource.now())
        var response = try drill.response(from: request, context: context)
        response.status = .created
        return response
    }

    @Sendable func abort(_ request: Request, context: StandbyRequestContext) async throws -> DrillView {
        let id = try context.parameters.require("id")
        let body = try await JSONBody(request, limit: 16 * 1024)
        let reason = try body.optionalString("reason") ?? "aborted by an operator"
        guard reason.count <= 1000 else {
            throw Problem.unprocessable("reason is longer than 1000 characters", field: "reason")
        }
        guard try await controlPlane.drill(id: id) != nil else { throw Problem.notFound("drill \(id) not found") }
        return try await controlPlane.abortDrill(id: id, reason: reason, actor: context.actor, now: timeSource.now())
    }

    @Sendable func get(_ request: Request, context: StandbyRequestContext) async throws -> DrillView {
        let id = try context.parameters.require("id")
        guard let drill = try await controlPlane.drill(id: id) else { throw Problem.notFound("drill \(id) not found") }
        return drill
    }

    @Sendable func list(_ request: Request, context: StandbyRequestContext) async throws -> Page<DrillView> {
        let query = QueryReader(request)
        return try await controlPlane.drills(deploymentId: query.string("deployment"), page: try query.page())
    }

    @Sendable func availability(_ request: Request, context: StandbyRequestContext) async throws
        -> AvailabilityReport
    {
        let id = try context.parameters.require("id")
        guard let deployment = topology.deployment(id) else { throw Problem.notFound("no deployment with id \(id)") }
        let query = QueryReader(request)
        let now = timeSource.now()
        let until = try query.date("until") ?? now
        let since = try query.date("since") ?? until.addingTimeInterval(-Self.defaultReportPeriod)
        guard since < until else { throw Problem.badRequest("since must be before until", field: "since") }
        guard until.timeIntervalSince(since) <= Self.maximumReportPeriod else {
            throw Problem.badRequest("a report covers at most 400 days", field: "since")
        }
        return try await AvailabilityReport.build(deployment, history: history, since: since, until: min(until, now))
    }
}
