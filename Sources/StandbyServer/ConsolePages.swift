import Foundation
import Hummingbird
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyStore

// The console's listings: commands, jobs and the resubmission queue (with retry and cancel for
// operators), alerts with their raw payload, the history with its export, and the cluster. One
// table template serves them all; each page is a heading, optional filters and rows of cells.

/// One page of the table template.
struct ConsoleTable {
    struct Cell {
        var text: String
        var link: String?
    }

    struct Action {
        var path: String
        var label: String
        var needsReason: Bool
    }

    struct Row {
        var cells: [Cell]
        var actions: [Action] = []
    }

    struct Filter {
        var name: String
        var label: String
        var options: [(value: String, text: String)]
        var selected: String?
    }

    var heading: String
    var path: String
    var columns: [String]
    var rows: [Row]
    var filters: [Filter] = []
    var links: [(href: String, text: String)] = []
    var more: String?
    var raw: String?

    func object(csrf: String?) -> [String: Any] {
        let hasActions = csrf != nil && rows.contains { !$0.actions.isEmpty }
        var object: [String: Any] = [
            "heading": heading, "path": path, "columns": columns.map { ["name": $0] }, "hasRows": !rows.isEmpty,
            "hasActions": hasActions, "hasFilters": !filters.isEmpty, "hasLinks": !links.isEmpty,
            "links": links.map { ["href": $0.href, "text": $0.text] },
            "filters": filters.map { filter in
                [
                    "name": filter.name, "label": filter.label,
                    "options": filter.options.map { option in
                        [
                            "value": option.value, "text": option.text,
                            "selected": option.value == (filter.selected ?? ""),
                        ]
                            as [String: Any]
                    },
                ] as [String: Any]
            },
            "rows": rows.enumerated().map { index, row in
                [
                    "hasActions": hasActions,
                    "cells": row.cells.map { cell -> [String: Any] in
                        var object: [String: Any] = ["text": cell.text]
                        if let link = cell.link { object["link"] = link }
                        return object
                    },
                    "actions": (csrf == nil ? [] : row.actions).enumerated().map { position, action in
                        [
                            "action": action.path, "label": action.label, "needsReason": action.needsReason,
                            "csrf": csrf ?? "", "id": "reason-\(index)-\(position)",
                        ] as [String: Any]
                    },
                ] as [String: Any]
            },
            "hasMore": more != nil, "hasRaw": raw != nil,
        ]
        if let more { object["more"] = more }
        if let raw { object["raw"] = raw }
        return object
    }
}

extension ConsoleController {
    func registerListings(on console: RouterGroup<StandbyRequestContext>) {
        console.get("commands") { request, context in
            try await self.listing(request) { try await self.commands(request) }
        }
        console.get("jobs") { request, context in
            try await self.listing(request) { try await self.jobs(request) }
        }
        console.get("alerts") { request, context in
            try await self.listing(request) { try await self.alerts(request) }
        }
        console.get("alerts/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await self.listing(request) { try await self.alert(id) }
        }
        console.get("events") { request, context in
            try await self.listing(request) { try await self.events(request) }
        }
        console.get("events/export") { request, context in
            guard self.signedIn(request) != nil else { return Self.redirect("/console/login") }
            return try await EventsController(history: self.history).export(request, context: context)
        }
        console.get("cluster") { request, context in
            try await self.listing(request) { try await self.cluster() }
        }
        console.post("resubmissions/:id/:action") { request, context in
            try await self.resubmissionAction(request, context: context)
        }
    }

    private func listing(_ request: Request, _ build: () async throws -> ConsoleTable) async throws -> Response {
        guard let session = signedIn(request) else { return Self.redirect("/console/login") }
        let table = try await build()
        let csrf = session.token.allows(.operator) ? session.csrf : nil
        return try page(
            title: table.heading, body: render("table", table.object(csrf: csrf)), session: session,
            notice: request.uri.queryParameters.get("notice"))
    }

    private static func page(_ request: Request) throws -> PageRequest {
        try QueryReader(request).page()
    }

    private static func more(_ path: String, _ next: String?, query: [String: String?] = [:]) -> String? {
        guard let next else { return nil }
        let parameters = query.compactMapValues { $0 }.sorted { $0.key < $1.key }.map {
            "\($0.key)=\(queryEscaped($0.value))"
        }
        return path + "?" + (parameters + ["cursor=\(queryEscaped(next))"]).joined(separator: "&")
    }

    func commands(_ request: Request) async throws -> ConsoleTable {
        let status = request.uri.queryParameters.get("status").flatMap(CommandStatus.init(rawValue:))
        let page = try await controlPlane.commands(status: status, deployment: nil, page: try Self.page(request))
        return ConsoleTable(
            heading: "Commands", path: "/console/commands",
            columns: [
                "created", "deployment", "failover event", "#", "command", "hub", "status", "acknowledged", "delivery",
            ],
            rows: page.items.map { command in
                ConsoleTable.Row(cells: [
                    .init(text: command.createdAt), .init(text: command.deploymentId),
                    .init(text: command.failoverEventId, link: "/console/failover-events/\(command.failoverEventId)"),
                    .init(text: "\(command.position + 1)"), .init(text: command.kind), .init(text: command.hub),
                    .init(text: command.status.rawValue),
                    .init(text: command.ackOutcome.map { "\($0) by \(command.ackActor ?? "?")" } ?? "-"),
                    .init(
                        text: command.deliveryAttempts == 0
                            ? "-"
                            : "\(command.deliveryAttempts) attempt(s)\(command.lastError.map { ", \($0)" } ?? "")"),
                ])
            },
            filters: [
                .init(
                    name: "status", label: "Status",
                    options: [("", "any")] + CommandStatus.allCases.map { ($0.rawValue, $0.rawValue) },
                    selected: status?.rawValue)
            ],
            more: Self.more("/console/commands", page.next, query: ["status": status?.rawValue]))
    }

    func jobs(_ request: Request) async throws -> ConsoleTable {
        let status = request.uri.queryParameters.get("status").flatMap(ResubmissionStatus.init(rawValue:))
        let queue = try await jobsQueue.resubmissions(status: status, page: try Self.page(request))
        return ConsoleTable(
            heading: "Resubmission queue", path: "/console/jobs",
            columns: ["job", "failover event", "from", "to", "priority", "status", "attempts", "lease", "last error"],
            rows: queue.items.map { item in
                var actions: [ConsoleTable.Action] = []
                if [.dead, .unassigned, .cancelled].contains(item.status) {
                    actions.append(
                        .init(path: "/console/resubmissions/\(item.id)/retry", label: "Retry", needsReason: false))
                }
                if item.status != .completed, item.status != .cancelled {
                    actions.append(
                        .init(path: "/console/resubmissions/\(item.id)/cancel", label: "Cancel", needsReason: true))
                }
                return ConsoleTable.Row(
                    cells: [
                        .init(text: item.externalId),
                        .init(text: item.failoverEventId, link: "/console/failover-events/\(item.failoverEventId)"),
                        .init(text: item.fromHub), .init(text: item.targetHub ?? "-"), .init(text: "\(item.priority)"),
                        .init(text: item.status.rawValue), .init(text: "\(item.attempts)/\(item.maxAttempts)"),
                        .init(text: item.leaseOwner.map { "\($0) until \(item.leaseExpiresAt ?? "?")" } ?? "-"),
                        .init(text: item.lastError ?? "-"),
                    ], actions: actions)
            },
            filters: [
                .init(
                    name: "status", label: "Status",
                    options: [("", "any")] + ResubmissionStatus.allCases.map { ($0.rawValue, $0.rawValue) },
                    selected: status?.rawValue)
            ],
            more: Self.more("/console/jobs", queue.next, query: ["status": status?.rawValue]))
    }

    func alerts(_ request: Request) async throws -> ConsoleTable {
        var query = AlertQuery()
        query.page = try Self.page(request)
        let page = try await alerts.list(query)
        return ConsoleTable(
            heading: "Alerts", path: "/console/alerts",
            columns: ["updated", "alert", "status", "condition", "rule", "hubs", "deliveries", "duplicates"],
            rows: page.items.map { alert in
                ConsoleTable.Row(cells: [
                    .init(text: alert.updatedAt),
                    .init(text: alert.rule ?? alert.key, link: "/console/alerts/\(alert.id)"),
                    .init(text: alert.status.rawValue), .init(text: alert.condition?.rawValue ?? "-"),
                    .init(text: alert.rule ?? "-"), .init(text: alert.hubs.map(\.hubId).joined(separator: ", ")),
                    .init(text: "\(alert.deliveryCount)"), .init(text: "\(alert.duplicateCount)"),
                ])
            },
            more: Self.more("/console/alerts", page.next))
    }

    func alert(_ id: String) async throws -> ConsoleTable {
        guard let alert = try await alerts.get(id: id) else { throw Problem.notFound("no alert with id \(id)") }
        return ConsoleTable(
            heading: "Alert \(alert.rule ?? alert.key)", path: "/console/alerts/\(id)",
            columns: ["delivery", "received", "from", "outcome", "bytes"],
            rows: (alert.deliveries ?? []).map { delivery in
                ConsoleTable.Row(cells: [
                    .init(text: delivery.id), .init(text: delivery.receivedAt),
                    .init(text: delivery.remoteAddress ?? "-"),
                    .init(text: delivery.outcome.rawValue), .init(text: "\(delivery.bytes)"),
                ])
            },
            links: [("/console/alerts", "All alerts")],
            raw: alert.raw.map { $0.canonicalString() } ?? alert.rawBase64.map { "base64: \($0)" })
    }

    func events(_ request: Request) async throws -> ConsoleTable {
        var query = try EventsController.query(request)
        if query.page.limit == PageRequest.defaultLimit { query.page.limit = 200 }
        let page = try await history.list(query)
        let deployment = query.deployment
        let filterQuery: [String: String?] = ["deployment": deployment, "type": query.types.first]
        return ConsoleTable(
            heading: "History", path: "/console/events",
            columns: ["seq", "at", "type", "deployment", "hub", "actor", "data"],
            rows: page.items.map { event in
                ConsoleTable.Row(cells: [
                    .init(text: "\(event.seq)"), .init(text: event.at), .init(text: event.type),
                    .init(text: event.deploymentId ?? "-"), .init(text: event.hub ?? "-"), .init(text: event.actor),
                    .init(text: event.data.canonicalString()),
                ])
            },
            filters: [
                .init(
                    name: "deployment", label: "Deployment",
                    options: [("", "any")] + controlPlane.topology.deployments.map { ($0.id, $0.id) },
                    selected: deployment)
            ],
            links: [
                ("/console/events/export?format=ndjson", "Export NDJSON"),
                ("/console/events/export?format=csv", "Export CSV"),
            ],
            more: Self.more("/console/events", page.next, query: filterQuery))
    }

    func cluster() async throws -> ConsoleTable {
        let view = try await store.cluster(seenFrom: instance, now: timeSource.now())
        return ConsoleTable(
            heading: "Cluster (\(view.backend.rawValue), database \(view.database.host), \(view.database.role))",
            path: "/console/cluster",
            columns: ["instance", "region", "url", "version", "started", "last seen", "leader"],
            rows: view.instances.map { instance in
                ConsoleTable.Row(cells: [
                    .init(text: instance.id), .init(text: instance.region ?? "-"), .init(text: instance.url ?? "-"),
                    .init(text: instance.version), .init(text: instance.startedAt), .init(text: instance.lastSeenAt),
                    .init(
                        text: instance.leader
                            ? "yes (epoch \(view.leader?.epoch ?? 0)\(view.leader?.expiresAt.map { ", until \($0)" } ?? ""))"
                            : "no"),
                ])
            })
    }

    /// Retry or cancel an item of the resubmission queue (operators).
    private func resubmissionAction(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        guard let session = signedIn(request) else { return Self.redirect("/console/login") }
        let form = try await Self.checkedForm(request, context: context, session: session)
        try Self.requireOperator(session, to: "change the queue")
        let id = try context.parameters.require("id")
        let action = try context.parameters.require("action")
        let now = timeSource.now()
        let notice: String
        do {
            switch action {
            case "retry":
                _ = try await jobsQueue.retry(id: id, targetHub: nil, actor: session.token.name, now: now)
                notice = "resubmission \(id) queued again"
            case "cancel":
                let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                _ = try await jobsQueue.cancel(
                    id: id, actor: session.token.name, reason: reason.isEmpty ? nil : String(reason.prefix(2000)),
                    now: now)
                notice = "resubmission \(id) cancelled"
            default:
                throw Problem.notFound("no such action")
            }
        } catch StoreError.conflict(let reason) {
            notice = "refused: \(reason)"
        }
        return Self.redirect("/console/jobs?notice=" + queryEscaped(notice))
    }
}
