import Crypto
import Foundation
import StandbyCore
import StandbyPrimitives

// The use cases around an incident: maintenance windows, the notification outbox and the
// acknowledgement deadline of commands.

/// A maintenance window as `POST /v1/maintenance-windows` asks for it.
public struct MaintenanceRequest: Sendable, Hashable {
    public var deploymentId: String
    /// Empty: every hub of the deployment.
    public var hubs: [String]
    public var startsAt: Date
    public var endsAt: Date
    public var reason: String

    public init(deploymentId: String, hubs: [String], startsAt: Date, endsAt: Date, reason: String) {
        self.deploymentId = deploymentId
        self.hubs = hubs
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.reason = reason
    }

    /// The same declaration again is a duplicate, whoever sends it.
    var fingerprint: String {
        let canonical = JSONValue.object([
            "deployment": .string(deploymentId), "hubs": .strings(hubs.sorted()),
            "startsAt": .string(Timestamp.format(startsAt)), "endsAt": .string(Timestamp.format(endsAt)),
            "reason": .string(reason),
        ]).canonicalString()
        return hexString(SHA256.hash(data: Data(canonical.utf8)))
    }
}

/// Where a maintenance window was declared.
public enum MaintenanceSource: String, Sendable, Hashable, Codable {
    case api
    case config
}

/// A window in a listing, with where it was declared.
public struct ListedMaintenanceWindow: Sendable, Hashable, Encodable {
    public var window: MaintenanceWindow
    public var source: MaintenanceSource
}

extension ControlPlane {
    // MARK: Maintenance windows

    /// Declares a window; the same declaration again returns the stored window (`created` false).
    /// It takes effect at the next decision (the ticker's, within a second).
    public func scheduleMaintenance(_ request: MaintenanceRequest, actor: String, now: Date) async throws
        -> (window: MaintenanceWindow, created: Bool)
    {
        guard let deployment = topology.deployment(request.deploymentId) else {
            throw StoreError.notFound("deployment \(request.deploymentId)")
        }
        if let unknown = request.hubs.first(where: { deployment.hub($0) == nil }) {
            throw StoreError.conflict("\(unknown) is not a hub of \(deployment.id)")
        }
        guard request.endsAt > request.startsAt else {
            throw StoreError.conflict("endsAt must be after startsAt")
        }
        guard request.endsAt > now else { throw StoreError.conflict("the window is already over (endsAt is past)") }
        let window = MaintenanceWindow(
            id: ids.next(), deploymentId: deployment.id, hubs: request.hubs, startsAt: request.startsAt,
            endsAt: request.endsAt, reason: request.reason, createdBy: actor, createdAt: now)
        return try await store.write { transaction in
            let stored = try transaction.insertMaintenanceWindow(window, fingerprint: request.fingerprint)
            guard stored.created else { return stored }
            try transaction.append(
                EventDraft(
                    type: "maintenance.scheduled", at: now, deploymentId: deployment.id, actor: actor,
                    data: .object([
                        "maintenanceWindowId": .string(window.id), "hubs": .strings(window.coveredHubs(of: deployment)),
                        "startsAt": .string(Timestamp.format(window.startsAt)),
                        "endsAt": .string(Timestamp.format(window.endsAt)), "reason": .string(window.reason),
                    ])))
            return stored
        }
    }

    /// Ends a window early; the next decision sees it over. Ending one already over changes nothing.
    public func endMaintenance(id: String, actor: String, now: Date) async throws -> MaintenanceWindow {
        try await store.write { transaction in
            guard let window = try transaction.maintenanceWindow(id: id) else {
                throw StoreError.notFound("maintenance window \(id)")
            }
            guard window.effectiveEnd > now else { return window }
            try transaction.endMaintenanceWindow(id: id, at: now)
            try transaction.append(
                EventDraft(
                    type: "maintenance.ended_early", at: now, deploymentId: window.deploymentId, actor: actor,
                    data: .object(["maintenanceWindowId": .string(id)])))
            return try transaction.maintenanceWindow(id: id) ?? window
        }
    }

    public func maintenanceWindow(id: String) async throws -> MaintenanceWindow? {
        try await store.read { reads in try reads.maintenanceWindow(id: id) }
    }

    /// The API's windows, newest first, after the config's (on the first page only, since they
    /// are not stored): one-off windows as declared, weekly ones by the occurrence in effect.
    public func maintenanceWindows(deploymentId: String?, active: Bool?, now: Date, page: PageRequest) async throws
        -> Page<ListedMaintenanceWindow>
    {
        let stored = try await store.read { reads in
            try reads.maintenanceWindows(deploymentId: deploymentId, active: active, now: now, page: page)
        }
        var configured: [MaintenanceWindow] = []
        if page.after == nil {
            let schedule = incident.maintenance
            configured =
                schedule.windows + schedule.recurring.compactMap { $0.occurrence(at: now) }
            configured = configured.filter { window in
                (deploymentId.map { $0 == window.deploymentId } ?? true)
                    && (active.map { $0 == window.isActive(at: now) } ?? true)
            }
        }
        return Page(
            items: configured.map { ListedMaintenanceWindow(window: $0, source: .config) }
                + stored.items.map { ListedMaintenanceWindow(window: $0, source: .api) }, next: stored.next)
    }

    // MARK: Notifications

    public func notifications(status: NotificationStatus?, deploymentId: String?, page: PageRequest) async throws
        -> Page<NotificationView>
    {
        try await store.read { reads in try reads.notifications(status: status, deploymentId: deploymentId, page: page)
        }
    }

    public func deliverableNotifications(now: Date, limit: Int) async throws -> [NotificationView] {
        try await store.read { reads in try reads.deliverableNotifications(now: now, limit: limit) }
    }

    public func recordNotificationDelivered(id: String, now: Date) async throws {
        try await store.write { transaction in try transaction.recordNotificationDelivered(id: id, at: now) }
    }

    /// A delivery attempt failed: try again at `nextAttemptAt`, or (nil) give up; giving up is
    /// recorded in the history, since nobody was told.
    public func recordNotificationFailure(id: String, error: String, nextAttemptAt: Date?, now: Date) async throws {
        try await store.write { transaction in
            try transaction.recordNotificationFailure(id: id, error: error, nextAttemptAt: nextAttemptAt, at: now)
            guard nextAttemptAt == nil else { return }
            try transaction.append(
                EventDraft(
                    type: "notification.failed", at: now, actor: "notifier",
                    data: .object(["notificationId": .string(id), "error": .string(error)])))
        }
    }

    // MARK: Acknowledgement deadline

    /// Gives up on the commands nobody acknowledged within `incident.ackDeadline`; returns how many.
    @discardableResult
    public func expireOverdueCommands(now: Date) async throws -> Int {
        let deadline = incident.ackDeadline
        let cutoff = now.addingTimeInterval(-deadline)
        let overdue = try await store.read { reads in try reads.overdueCommands(createdBefore: cutoff, limit: 1) }
        guard !overdue.isEmpty else { return 0 }
        return try await store.write { transaction in
            var session = self.session(transaction, now: now)
            let commands = try transaction.overdueCommands(createdBefore: cutoff, limit: 256)
            for command in commands { try session.expire(command, deadline: deadline, in: transaction) }
            try session.decideAndSave(in: transaction)
            return commands.count
        }
    }
}

extension ControlPlane {
    // MARK: Drills

    /// Starts a drill: a real, announced failover now, held for `holdFor` once acknowledged, then
    /// failed back by the engine. Refused (a conflict, with the reason) when the deployment is not
    /// healthy, a real incident is open or another drill runs.
    public func startDrill(deploymentId: String, request: DrillRequest, now: Date) async throws -> DrillView {
        guard let deployment = topology.deployment(deploymentId) else {
            throw StoreError.notFound("deployment \(deploymentId)")
        }
        return try await store.write { transaction in
            var session = self.session(transaction, now: now)
            try session.refresh(deployment)
            let drill = try session.startDrill(request, on: deployment)
            try session.decideAndSave(in: transaction)
            return try transaction.drill(id: drill.id) ?? drill
        }
    }

    /// Aborts a running drill: it fails back now.
    public func abortDrill(id: String, reason: String, actor: String, now: Date) async throws -> DrillView {
        try await store.write { transaction in
            var session = self.session(transaction, now: now)
            let drill = try session.abortDrill(id: id, reason: reason, actor: actor)
            try session.decideAndSave(in: transaction)
            return try transaction.drill(id: id) ?? drill
        }
    }

    public func drill(id: String) async throws -> DrillView? {
        try await store.read { reads in try reads.drill(id: id) }
    }

    public func drills(deploymentId: String?, page: PageRequest) async throws -> Page<DrillView> {
        try await store.read { reads in try reads.drills(deploymentId: deploymentId, page: page) }
    }
}
