import ConfigReading
import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives

// `notifications:` and `maintenance:` of the configuration.
extension ConfigReader {
    func readNotifications(_ root: ConfigNode) -> NotificationSettings {
        var settings = NotificationSettings()
        guard let notifications = mapping(root, "notifications", allowed: ["receivers", "routes"]) else {
            return settings
        }
        var names = Set<String>()
        for item in mappings(notifications, "receivers") {
            checkKeys(item, allowed: ["name", "type", "url", "routingKey", "secret", "allowPlainHTTP"])
            guard let name = string(item, "name", required: true), !name.isEmpty,
                let kind = choice(item, "type", default: NotificationReceiver.Kind?.none)
            else { continue }
            if !names.insert(name).inserted { problem("\(item.path).name", "duplicate receiver name \"\(name)\"") }
            let allowPlainHTTP = bool(item, "allowPlainHTTP", default: false)
            let url =
                string(item, "url", default: kind == .pagerduty ? NotificationReceiver.pagerDutyEventsURL : nil)
                ?? ""
            if url.isEmpty {
                problem("\(item.path).url", "is required for a \(kind.rawValue) receiver")
            } else {
                checkURL(url, at: "\(item.path).url", allowPlainHTTP: allowPlainHTTP)
            }
            var receiver = NotificationReceiver(name: name, kind: kind, url: url)
            switch kind {
            case .pagerduty:
                // The integration key opens the service's incidents: `${VAR}` from the environment.
                receiver.routingKey = secret(item, "routingKey", minimumBytes: 1, required: true)
            case .webhook:
                receiver.secret = secret(item, "secret", minimumBytes: Self.minimumKeyBytes, required: true)
            case .slack, .teams:
                for key in ["routingKey", "secret"] where item.child(key) != nil {
                    problem("\(item.path).\(key)", "applies to pagerduty and webhook receivers only")
                }
            }
            settings.receivers.append(receiver)
        }
        var routes: [NotificationRoute] = []
        for item in mappings(notifications, "routes") {
            checkKeys(item, allowed: ["events", "receivers", "deployments"])
            let receivers = stringOrList(item, "receivers")
            if receivers.isEmpty { problem("\(item.path).receivers", "at least one receiver is required") }
            for (index, name) in receivers.enumerated() where !names.contains(name) {
                problem("\(item.path).receivers[\(index)]", "no receiver is named \"\(name)\"")
            }
            var events: Set<NotificationEvent>?
            if item.child("events") != nil {
                events = []
                for (index, name) in stringOrList(item, "events").enumerated() {
                    if let event = NotificationEvent(rawValue: name) {
                        events?.insert(event)
                    } else {
                        problem(
                            "\(item.path).events[\(index)]",
                            "unknown event \"\(name)\" (expected one of: "
                                + NotificationEvent.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                    }
                }
            }
            let deployments = item.child("deployments") != nil ? Set(stringOrList(item, "deployments")) : nil
            routes.append(NotificationRoute(events: events, receivers: receivers, deployments: deployments))
        }
        settings.routing = NotificationRouting(routes: routes)
        return settings
    }

    func readMaintenance(_ root: ConfigNode, topology: Topology) -> MaintenanceSchedule {
        var schedule = MaintenanceSchedule()
        guard let maintenance = mapping(root, "maintenance", allowed: ["windows"]) else { return schedule }
        var names = Set<String>()
        for item in mappings(maintenance, "windows") {
            checkKeys(item, allowed: ["name", "deployment", "hubs", "reason", "startsAt", "endsAt", "weekly"])
            guard let name = string(item, "name", required: true), !name.isEmpty,
                let deploymentId = string(item, "deployment", required: true)
            else { continue }
            if !names.insert(name).inserted { problem("\(item.path).name", "duplicate window name \"\(name)\"") }
            let hubs = stringOrList(item, "hubs")
            if let deployment = topology.deployment(deploymentId) {
                for (index, hub) in hubs.enumerated() where deployment.hub(hub) == nil {
                    problem("\(item.path).hubs[\(index)]", "\(hub) is not a hub of \(deploymentId)")
                }
            } else {
                problem("\(item.path).deployment", "no deployment is named \"\(deploymentId)\"")
            }
            let reason = string(item, "reason", default: "planned maintenance") ?? "planned maintenance"
            if let weekly = mapping(item, "weekly", allowed: ["days", "start", "end", "timeZone"]) {
                for key in ["startsAt", "endsAt"] where item.child(key) != nil {
                    problem("\(item.path).\(key)", "a window is either weekly or from startsAt to endsAt, not both")
                }
                guard let recurring = readWeekly(weekly, name: name, deploymentId: deploymentId, hubs: hubs)
                else { continue }
                var window = recurring
                window.reason = reason
                schedule.recurring.append(window)
                continue
            }
            guard let startsAt = date(item, "startsAt"), let endsAt = date(item, "endsAt") else { continue }
            guard endsAt > startsAt else {
                problem("\(item.path).endsAt", "must be after startsAt")
                continue
            }
            schedule.windows.append(
                MaintenanceWindow(
                    id: "config:\(name)", deploymentId: deploymentId, hubs: hubs, startsAt: startsAt, endsAt: endsAt,
                    reason: reason, createdBy: "config", createdAt: startsAt))
        }
        return schedule
    }

    /// `weekly: {days: [saturday, "monday:friday"], start: "02:00", end: "04:00", timeZone: Europe/London}`.
    private func readWeekly(_ node: ConfigNode, name: String, deploymentId: String, hubs: [String])
        -> RecurringMaintenance?
    {
        let dayNames = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
        var weekdays = Set<Int>()
        for (index, text) in stringOrList(node, "days").enumerated() {
            let bounds = text.lowercased().split(separator: ":").map { dayNames.firstIndex(of: String($0)) }
            guard !bounds.isEmpty, bounds.count <= 2, let first = bounds.first ?? nil, let last = bounds.last ?? nil
            else {
                problem("\(node.path).days[\(index)]", "expected a day name or a range such as monday:friday")
                continue
            }
            // A range may wrap around the week (friday:monday).
            var day = first
            while true {
                weekdays.insert(day + 1)
                if day == last { break }
                day = (day + 1) % 7
            }
        }
        if weekdays.isEmpty { problem("\(node.path).days", "at least one day is required") }
        let start = clockTime(node, "start", allowMidnightEnd: false)
        let end = clockTime(node, "end", allowMidnightEnd: true)
        let zoneName = string(node, "timeZone", default: "UTC") ?? "UTC"
        let zone = TimeZone(identifier: zoneName)
        if zone == nil {
            problem(
                "\(node.path).timeZone",
                "unknown time zone \"\(zoneName)\" (expected an IANA name such as Europe/London)")
        }
        guard let start, let end, let zone, !weekdays.isEmpty else { return nil }
        if start == end { problem("\(node.path).end", "must differ from start") }
        return RecurringMaintenance(
            name: name, deploymentId: deploymentId, hubs: hubs, weekdays: weekdays, start: start, end: end,
            timeZone: zone, reason: "")
    }

    /// "HH:MM" as minutes after midnight; "24:00" only as an end.
    private func clockTime(_ node: ConfigNode, _ key: String, allowMidnightEnd: Bool) -> Int? {
        guard let text = string(node, key, required: true) else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]),
            let minutes = Int(parts[1]), (0..<60).contains(minutes),
            (0..<24).contains(hours) || (allowMidnightEnd && hours == 24 && minutes == 0)
        {
            return hours * 60 + minutes
        }
        problem("\(node.path).\(key)", "expected a time of day such as 02:00, found \"\(text)\"")
        return nil
    }

    private func date(_ node: ConfigNode, _ key: String) -> Date? {
        guard let text = string(node, key, required: true) else { return nil }
        guard let date = Timestamp.parse(text) else {
            problem("\(node.path).\(key)", "expected an RFC 3339 time such as 2026-12-05T02:00:00Z, found \"\(text)\"")
            return nil
        }
        return date
    }
}
