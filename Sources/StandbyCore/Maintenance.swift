import Foundation
import StandbyPrimitives

/// A planned period in which automation keeps its hands off some hubs of a deployment: signals are
/// still recorded and failure windows still opened, but automatic moves away from or to those hubs
/// are suppressed (operators can still act). Declared through the API or in the config, once or
/// weekly.
public struct MaintenanceWindow: Sendable, Hashable, Codable {
    public var id: String
    public var deploymentId: String
    /// The hubs under maintenance; empty means every hub of the deployment.
    public var hubs: [String]
    public var startsAt: Date
    public var endsAt: Date
    public var reason: String
    public var createdBy: String
    public var createdAt: Date
    /// Set when the window was ended before `endsAt`.
    public var endedAt: Date?

    public init(
        id: String, deploymentId: String, hubs: [String], startsAt: Date, endsAt: Date, reason: String,
        createdBy: String, createdAt: Date, endedAt: Date? = nil
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.hubs = hubs
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.reason = reason
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.endedAt = endedAt
    }

    /// When the window stops being in effect: its end, or the moment it was ended early.
    public var effectiveEnd: Date { endedAt.map { min($0, endsAt) } ?? endsAt }

    public func isActive(at now: Date) -> Bool { startsAt <= now && now < effectiveEnd }

    /// The hubs of `deployment` the window covers.
    public func coveredHubs(of deployment: DeploymentDefinition) -> [String] {
        hubs.isEmpty ? deployment.hubs.map(\.id) : hubs
    }
}

/// A weekly maintenance window from the config, in a named time zone (as Alertmanager's
/// `time_intervals`): on each of `weekdays`, from `start` to `end` local time. An `end` at or
/// before `start` runs past midnight into the next day.
public struct RecurringMaintenance: Sendable, Hashable {
    public var name: String
    public var deploymentId: String
    public var hubs: [String]
    /// 1 = Sunday ... 7 = Saturday, as `Calendar` numbers them.
    public var weekdays: Set<Int>
    /// Minutes after local midnight; `end` may be 1440 (24:00).
    public var start: Int
    public var end: Int
    public var timeZone: TimeZone
    public var reason: String

    public init(
        name: String, deploymentId: String, hubs: [String], weekdays: Set<Int>, start: Int, end: Int,
        timeZone: TimeZone, reason: String
    ) {
        self.name = name
        self.deploymentId = deploymentId
        self.hubs = hubs
        self.weekdays = weekdays
        self.start = start
        self.end = end
        self.timeZone = timeZone
        self.reason = reason
    }

    /// The occurrence in effect at `now`, as a concrete window whose id names the occurrence
    /// (`<name>@<start>`), or nil.
    public func occurrence(at now: Date) -> MaintenanceWindow? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let today = calendar.startOfDay(for: now)
        let length = (end > start ? end - start : end + 1440 - start)
        // An occurrence that began yesterday may still run (past midnight).
        for dayOffset in [0, -1] {
            guard let day = calendar.date(byAdding: .day, value: dayOffset, to: today),
                weekdays.contains(calendar.component(.weekday, from: day)),
                let begins = calendar.date(bySettingHour: start / 60, minute: start % 60, second: 0, of: day)
            else { continue }
            // Local clock arithmetic, so that a window keeps its local hours across DST changes.
            let ends =
                calendar.date(byAdding: .minute, value: length, to: begins)
                ?? begins.addingTimeInterval(
                    Double(length * 60))
            guard begins <= now, now < ends else { continue }
            return MaintenanceWindow(
                id: "\(name)@\(Timestamp.format(begins))", deploymentId: deploymentId, hubs: hubs, startsAt: begins,
                endsAt: ends, reason: reason, createdBy: "config", createdAt: begins)
        }
        return nil
    }
}

/// The maintenance windows of the config, one-off and weekly.
public struct MaintenanceSchedule: Sendable, Hashable {
    public var windows: [MaintenanceWindow]
    public var recurring: [RecurringMaintenance]

    public init(windows: [MaintenanceWindow] = [], recurring: [RecurringMaintenance] = []) {
        self.windows = windows
        self.recurring = recurring
    }

    /// The configured windows of `deploymentId` in effect at `now`.
    public func active(deploymentId: String, at now: Date) -> [MaintenanceWindow] {
        windows.filter { $0.deploymentId == deploymentId && $0.isActive(at: now) }
            + recurring.filter { $0.deploymentId == deploymentId }.compactMap { $0.occurrence(at: now) }
    }
}
