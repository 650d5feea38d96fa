import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyStore

/// `/console`: the operator console, server-rendered from the templates in `console/` (embedded in
/// the binary), with a little plain JavaScript for live updates over Server-Sent Events. Signing in
/// takes an API token once; the session has that token's roles, so a reader sees no action and
/// the server refuses what a role may not do.
struct ConsoleController: Sendable {
    static let cookie = "standby_session"

    let authenticator: Authenticator
    let sessions: ConsoleSessions
    let controlPlane: ControlPlane
    let jobsQueue: JobQueue
    let alerts: any AlertRepository
    let history: any HistoryStore
    let store: any ControlStore
    let instance: InstanceIdentity
    let readiness: Readiness
    let timeSource: any TimeSource
    let settings: ConsoleSettings
    let library: MustacheLibrary

    init(
        authenticator: Authenticator, components: StandbyComponents, settings: ConsoleSettings
    ) throws {
        self.authenticator = authenticator
        controlPlane = components.controlPlane
        jobsQueue = components.jobs
        alerts = components.alerts
        history = components.history
        store = components.store
        instance = components.instance
        readiness = components.readiness
        timeSource = components.timeSource
        self.settings = settings
        sessions = ConsoleSessions(idleTimeout: settings.sessionIdleTimeout)
        var library = MustacheLibrary()
        for (name, text) in EmbeddedConsole.templates { try library.register(text, named: name) }
        self.library = library
    }

    func register(on router: Router<StandbyRequestContext>) {
        let console = router.group("console")
        console.get("login") { request, context in try self.loginPage(request, context: context) }
        console.post("login") { request, context in try await self.login(request, context: context) }
        console.post("logout") { request, context in try await self.logout(request, context: context) }
        console.get { request, context in try await self.overview(request, context: context) }
        console.get("stream") { request, context in try self.stream(request, context: context) }
        registerListings(on: console)
        console.get("deployments/:id/timeline") { request, context in
            try await self.timeline(request, context: context)
        }
        console.get("failover-events/:id") { request, context in
            try await self.failoverEvent(request, context: context)
        }
        console.get("deployments/:id/:action") { request, context in
            try await self.confirmation(request, context: context)
        }
        console.post("deployments/:id/:action") { request, context in
            try await self.act(request, context: context)
        }
    }

    // MARK: Signing in and out

    private func loginPage(_ request: Request, context: StandbyRequestContext) throws -> Response {
        if session(of: request) != nil { return Self.redirect("/console") }
        return try page(title: "Sign in", body: render("login", [:]), session: nil)
    }

    private func login(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let form = try await Self.form(request, context: context)
        guard let secret = form["token"], !secret.isEmpty, let token = authenticator.apiToken(bearer: secret) else {
            return try page(
                title: "Sign in", body: render("login", [:]), session: nil, status: .unauthorized,
                error: "That API token is not valid.")
        }
        let (id, _) = sessions.start(token, now: timeSource.now())
        var response = Self.redirect("/console")
        response.headers[.setCookie] = Self.sessionCookie(id, request: request)
        return response
    }

    private func logout(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        if let (id, session) = session(of: request) {
            _ = try await Self.checkedForm(request, context: context, session: session)
            sessions.end(id)
        }
        var response = Self.redirect("/console/login")
        response.headers[.setCookie] = "\(Self.cookie)=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
        return response
    }

    // MARK: Pages

    private func overview(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        guard let (_, session) = session(of: request) else { return Self.redirect("/console/login") }
        let fragment = try await deploymentsFragment(for: session)
        let notice = request.uri.queryParameters.get("notice")
        return try page(
            title: "Overview", body: "<h1>Deployments</h1><div id=\"deployments\">\(fragment)</div>", session: session,
            notice: notice)
    }

    /// Live updates: the deployments' markup again whenever it changes, as `deployments` events
    /// whose id is a hash of the markup (a browser reconnecting with `Last-Event-ID` gets nothing
    /// until something changed). Each stream ends after `streamLifetime`, or when the process
    /// begins to shut down; the browser's EventSource then reconnects.
    private func stream(_ request: Request, context: StandbyRequestContext) throws -> Response {
        guard let (_, session) = session(of: request) else {
            throw Problem.unauthorized("sign in at /console/login first")
        }
        let lastEventId = request.headers[HTTPField.Name("Last-Event-ID")!]
        let lifetime = Duration.milliseconds(Int64(settings.streamLifetime * 1000))
        let interval = Duration.milliseconds(Int64(settings.streamInterval * 1000))
        let body = ResponseBody { writer in
            let ends = ContinuousClock.now + lifetime
            var sent = lastEventId
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            while ContinuousClock.now < ends, !readiness.isDraining {
                let fragment = try await deploymentsFragment(for: session)
                let id = Data(fragment.utf8).sha256Hex
                if id != sent {
                    try await writer.write(ByteBuffer(string: Self.event("deployments", id: id, data: fragment)))
                    sent = id
                }
                try await Task.sleep(for: interval)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store"], body: body)
    }

    /// One Server-Sent Event; each line of `data` is a `data:` line of its own.
    static func event(_ name: String, id: String, data: String) -> String {
        var text = "event: \(name)\nid: \(id)\n"
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        return text + "\n"
    }

    /// The last 24 hours (or `?range=7d`) of a deployment, drawn as SVG (`ConsoleTimeline`).
    private func timeline(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        guard let (_, session) = session(of: request) else { return Self.redirect("/console/login") }
        let id = try context.parameters.require("id")
        let now = timeSource.now()
        guard let deployment = try await controlPlane.deployment(id: id, now: now) else {
            throw Problem.notFound("no deployment with id \(id)")
        }
        let week = request.uri.queryParameters.get("range") == "7d"
        let start = now.addingTimeInterval(week ? -7 * 86_400 : -86_400)
        var query = EventQuery()
        query.deployment = id
        query.since = start
        // The newest history of the range, bounded: a storm of thousands of events still draws.
        var events: [EventRecord] = []
        var after: Int64 = 0
        while events.count < Self.timelineEventLimit {
            let batch = try await history.batch(query, afterSeq: after, batchSize: 1000)
            guard let last = batch.last else { break }
            events += batch
            after = last.seq
        }
        let picture = ConsoleTimeline(deployment: deployment, start: start, end: now, events: events)
        let marks = picture.marks()
        let body = try render(
            "timeline",
            [
                "deployment": id, "svg": picture.svg(), "day": !week, "week": week, "hasMarks": !marks.isEmpty,
                "marks": marks.reversed().map { mark -> [String: Any] in
                    var object: [String: Any] = ["at": Timestamp.format(mark.at), "text": mark.text]
                    if let link = mark.link { object["link"] = link }
                    return object
                },
            ])
        return try page(title: "Timeline \(id)", body: body, session: session)
    }

    static let timelineEventLimit = 20_000

    /// One failover event with its evidence and its commands.
    private func failoverEvent(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        guard let (_, session) = session(of: request) else { return Self.redirect("/console/login") }
        let id = try context.parameters.require("id")
        guard let event = try await controlPlane.failoverEvent(id: id) else {
            throw Problem.notFound("no failover event with id \(id)")
        }
        let body = try render(
            "failover-event",
            [
                "deployment": event.deploymentId, "kind": event.kind, "from": event.fromHub ?? "-",
                "to": event.toHub ?? "-", "status": event.status.rawValue, "trigger": event.trigger, "rule": event.rule,
                "createdAt": event.createdAt, "actor": event.actor, "settledAt": event.settledAt ?? "-",
                "reason": event.reason, "hasEvidence": !event.evidence.isEmpty,
                "evidence": event.evidence.map { ["text": $0] }, "hasCommands": !event.commands.isEmpty,
                "commands": event.commands.map { command -> [String: Any] in
                    [
                        "position": command.position + 1, "kind": command.kind, "hub": command.hub,
                        "status": command.status.rawValue,
                        "ack": command.ackOutcome.map {
                            "\($0) by \(command.ackActor ?? "?") at \(command.ackedAt ?? "?")"
                        }
                            ?? "-",
                        "delivery": command.deliveryAttempts == 0
                            ? "-"
                            : "\(command.deliveryAttempts) attempt(s)\(command.lastError.map { ", last error: \($0)" } ?? "")"
                            ,
                    ]
                },
            ])
        return try page(title: "Failover event \(id)", body: body, session: session)
    }

    // MARK: Actions

    /// The action's confirmation: what the engine would do now (computed on a snapshot, nothing
    /// saved) or why it would refuse, then the reason, and `force` for the roles that may use it.
    private func confirmation(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        guard let (_, session) = session(of: request) else { return Self.redirect("/console/login") }
        let (id, action) = try target(of: context, session: session)
        let preview = try await controlPlane.preview(
            deploymentId: id,
            request: OperatorRequest(
                action: action, reason: "preview", actor: session.token.name, force: false,
                allowUnhealthyTarget: false, hub: nil),
            now: timeSource.now())
        var object: [String: Any] = [
            "deployment": id, "action": action.rawValue, "label": Self.label(action), "verb": Self.verb(action),
            "csrf": session.csrf, "offerForce": action == .failover || action == .failback,
            "offerUntil": action == .pause,
        ]
        switch preview {
        case .move(let plan, let interrupted):
            object["summary"] = ConsoleOverview.summary(plan, interruptedJobs: interrupted)
            object["hasCommands"] = !plan.commands.isEmpty
            object["commands"] = plan.commands.map { ["text": ConsoleOverview.describe($0)] }
        case .noMove:
            object["summary"] =
                action == .pause
                ? "pauses automation of \(id): no automatic move until it is resumed (operators may still act)"
                : "resumes automation of \(id): the engine decides again at the next signal or tick"
        case .refused(let reason):
            object["isRefused"] = true
            object["refused"] = reason
        }
        object["hasSummary"] = object["summary"] != nil
        return try page(
            title: "\(Self.label(action)) \(id)", body: render("action", object), session: session)
    }

    /// The deployment and action a console action route names, for a session that may act.
    private func target(of context: StandbyRequestContext, session: ConsoleSessions.Session) throws
        -> (String, OperatorAction)
    {
        try Self.requireOperator(session, to: "act on deployments")
        let id = try context.parameters.require("id")
        guard let action = OperatorAction(rawValue: try context.parameters.require("action")) else {
            throw Problem.notFound("no such action")
        }
        guard controlPlane.topology.deployment(id) != nil else { throw Problem.notFound("no deployment with id \(id)") }
        return (id, action)
    }

    static func label(_ action: OperatorAction) -> String {
        switch action {
        case .pause: return "Pause"
        case .resume: return "Resume"
        case .failover: return "Fail over"
        case .failback: return "Fail back"
        }
    }

    static func verb(_ action: OperatorAction) -> String { label(action).lowercased() }

    private func act(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        guard let (_, session) = session(of: request) else { return Self.redirect("/console/login") }
        let form = try await Self.checkedForm(request, context: context, session: session)
        let (id, action) = try target(of: context, session: session)
        let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.count <= 2000 else {
            return Self.redirect("/console?notice=" + queryEscaped("Give a reason (at most 2000 characters)."))
        }
        var until: Date?
        if action == .pause, let text = form["until"]?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            // A datetime-local field sends "2026-12-05T02:00" (no zone): the form says it is UTC.
            guard let date = Timestamp.parse(text) ?? Timestamp.parse(text + ":00Z") else {
                return Self.redirect(
                    "/console?notice=" + queryEscaped("Until must be a date and time such as 2026-12-05T02:00."))
            }
            until = date
        }
        let notice: String
        do {
            let outcome = try await controlPlane.operatorAction(
                deploymentId: id,
                request: OperatorRequest(
                    action: action, reason: reason, actor: session.token.name, force: form["force"] == "on",
                    allowUnhealthyTarget: form["allowUnhealthyTarget"] == "on", hub: nil, until: until),
                now: timeSource.now())
            switch outcome {
            case .moved(let event):
                notice =
                    "\(action.rawValue) of \(id) decided: \(event.fromHub ?? "-") → \(event.toHub ?? "-") (\(event.status.rawValue))"
            case .updated:
                notice = "\(action.rawValue) of \(id) recorded."
            }
        } catch StoreError.conflict(let reason) {
            notice = "\(action.rawValue) of \(id) refused: \(reason)"
        }
        return Self.redirect("/console?notice=" + queryEscaped(notice))
    }

    // MARK: Rendering

    func deploymentsFragment(for session: ConsoleSessions.Session) async throws -> String {
        let now = timeSource.now()
        let views = try await controlPlane.deployments(now: now)
        let operate = session.token.allows(.operator)
        let deployments = views.map { view in
            ConsoleOverview.deployment(
                view, policy: controlPlane.topology.deployment(view.id)?.policy ?? Policy(), now: now,
                csrf: operate ? session.csrf : nil)
        }
        return try render("deployments", ["deployments": deployments])
    }

    func render(_ template: String, _ object: [String: Any]) throws -> String {
        guard let text = library.render(object, withTemplate: template) else {
            throw ContractDrift(description: "the console has no template \(template)")
        }
        return text
    }

    func page(
        title: String, body: String, session: ConsoleSessions.Session?, status: HTTPResponse.Status = .ok,
        notice: String? = nil, error: String? = nil
    ) throws -> Response {
        var object: [String: Any] = ["title": title, "body": body]
        if let session {
            object["signedIn"] = true
            object["name"] = session.token.name
            object["roles"] = session.token.roles.map(\.rawValue).sorted().joined(separator: ", ")
            object["csrf"] = session.csrf
        }
        if let notice { object["notice"] = notice }
        if let error { object["error"] = error }
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                    + "frame-ancestors 'none'; form-action 'self'",
                HTTPField.Name("X-Frame-Options")!: "DENY",
            ],
            body: .init(byteBuffer: ByteBuffer(string: try render("page", object))))
    }

    // MARK: Requests

    /// The signed-in session of `request`, if any.
    func signedIn(_ request: Request) -> ConsoleSessions.Session? { session(of: request)?.1 }

    private func session(of request: Request) -> (String, ConsoleSessions.Session)? {
        guard let id = request.cookies[Self.cookie]?.value, !id.isEmpty,
            let session = sessions.touch(id, now: timeSource.now())
        else { return nil }
        return (id, session)
    }

    static let csrfRefusal = Problem.forbidden("the form is stale or was not sent by the console (CSRF token)")

    /// The fields of an `application/x-www-form-urlencoded` body (the console's forms).
    static func form(_ request: Request, context: StandbyRequestContext) async throws -> [String: String] {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        do {
            return try URLEncodedFormDecoder().decode([String: String].self, from: String(buffer: buffer))
        } catch {
            throw Problem.badRequest("the form is not application/x-www-form-urlencoded text")
        }
    }

    /// The fields of a form that changes something for `session`: refused unless it carries the
    /// session's CSRF token.
    static func checkedForm(_ request: Request, context: StandbyRequestContext, session: ConsoleSessions.Session)
        async throws -> [String: String]
    {
        let form = try await form(request, context: context)
        guard constantTimeEqual(form["csrf"] ?? "", session.csrf) else { throw csrfRefusal }
        return form
    }

    /// Refuses a session whose token may not act (it needs the operator role).
    static func requireOperator(_ session: ConsoleSessions.Session, to what: String) throws {
        guard session.token.allows(.operator) else {
            throw Problem.forbidden("\(session.token.name) may not \(what) (it needs the operator role)")
        }
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// `Secure` when the request came over TLS to a proxy that says so: Standby itself serves
    /// plain HTTP on a private address.
    static func sessionCookie(_ id: String, request: Request) -> String {
        let secure = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
        return "\(cookie)=\(id); Path=/console; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }
}

/// The overview's view of a deployment, as the templates read it.
enum ConsoleOverview {
    static func deployment(_ view: DeploymentView, policy: Policy, now: Date, csrf: String?) -> [String: Any] {
        let automation = view.automation
        var object: [String: Any] = [
            "id": view.id, "pattern": view.pattern.rawValue, "servingHubs": view.serving.joined(separator: ", "),
            "automation": automation.state,
            "movesLeft": max(0, policy.maxFailoversPerHour - automation.automaticMovesLastHour),
            "hubs": view.hubs.map(hub),
        ]
        if let reason = automation.reason { object["reason"] = reason }
        if let until = automation.pausedUntil { object["pausedUntil"] = until }
        if !automation.maintenanceWindows.isEmpty {
            object["maintenance"] = automation.maintenanceWindows.joined(separator: ", ")
        }
        if automation.dryRun { object["dryRun"] = true }
        if automation.failbackReady { object["failbackReady"] = true }
        if let last = automation.lastMoveAt.flatMap(Timestamp.parse) {
            let until = last.addingTimeInterval(policy.cooldown)
            if until > now { object["cooldown"] = Timestamp.format(until) }
        }
        if !view.hubs.isEmpty, view.hubs.allSatisfy({ $0.health == .down }) { object["bothDown"] = true }
        if let event = view.lastFailover {
            let waiting = event.commands.filter { $0.status == .pending || $0.status == .delivered }
            if !waiting.isEmpty, event.status == .open {
                object["unacknowledged"] = waiting.count
                object["openEvent"] = event.id
            }
            object["lastFailover"] =
                [
                    "kind": event.kind, "from": event.fromHub ?? "-", "to": event.toHub ?? "-",
                    "status": event.status.rawValue, "createdAt": event.createdAt, "reason": event.reason,
                    "hasCommands": !event.commands.isEmpty,
                    "commands": event.commands.map { ["kind": $0.kind, "hub": $0.hub, "status": $0.status.rawValue] },
                ] as [String: Any]
        }
        if let csrf {
            object["canOperate"] = true
            let actions: [OperatorAction] = [automation.paused ? .resume : .pause, .failover, .failback]
            object["actions"] = actions.map { action in
                [
                    "deployment": view.id, "action": action.rawValue, "label": ConsoleController.label(action),
                    "csrf": csrf,
                ]
            }
        }
        return object
    }

    /// A plan in words: "routes traffic from eastus-hub to westus-hub, scales westus-hub up,
    /// interrupts 3 running jobs".
    static func summary(_ plan: FailoverPlan, interruptedJobs: Int) -> String {
        var parts = plan.commands.map(describe)
        if plan.commands.isEmpty { parts.append("records a \(plan.kind.rawValue) (no command to send)") }
        if interruptedJobs > 0 {
            parts.append(
                "interrupts \(interruptedJobs) running job\(interruptedJobs == 1 ? "" : "s")"
                    + (plan.resubmitTo.map { " (queued for resubmission to \($0))" } ?? ""))
        }
        var text = parts.joined(separator: ", ")
        if plan.dryRun { text += " — dry run: recorded, never dispatched" }
        return text
    }

    static func describe(_ command: CommandPlan) -> String {
        switch command.kind {
        case .routeTraffic:
            return "routes traffic from \(command.fromHub ?? "?") to \(command.toHub ?? command.hub)"
        case .scaleCompute:
            return "scales \(command.hub) \(command.parameters["direction"] ?? "")"
                .trimmingCharacters(in: .whitespaces)
        case .removeFromRotation:
            return "removes \(command.hub) from the rotation"
        case .restoreToRotation:
            return "restores \(command.hub) to the rotation"
        }
    }

    static func hub(_ hub: HubView) -> [String: Any] {
        var object: [String: Any] = [
            "id": hub.id, "regionName": hub.regionName, "role": hub.role.rawValue, "health": hub.health.rawValue,
            "healthClass": hub.health.rawValue, "hasSources": !hub.sources.isEmpty,
            "sources": hub.sources.map {
                ["source": $0.source, "state": $0.state.rawValue, "last": $0.lastObservedAt ?? "-"]
            },
        ]
        // Always set: a key missing here would be looked up in the deployment's context.
        object["serving"] = hub.serving
        if let since = hub.healthSince { object["since"] = since }
        if let window = hub.openWindow {
            var members: [String: Any] = [
                "failureCount": window.failureCount, "firstFailureAt": window.firstFailureAt,
            ]
            if let down = window.declaredDownAt { members["declaredDownAt"] = down }
            if !window.evidence.isEmpty { members["evidence"] = window.evidence.suffix(5).joined(separator: ", ") }
            object["window"] = members
        }
        return object
    }
}
