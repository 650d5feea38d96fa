import Foundation
import Hummingbird
import Logging
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// `POST /webhooks/azure-monitor`: where Azure Monitor action groups deliver alerts.
struct WebhookController {
    let authenticator: Authenticator
    let secureWebhook: SecureWebhookVerifier?
    let allowedSubscriptions: Set<String>
    let maxBodyBytes: Int
    let ingest: AlertIngest

    var endpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post(use: receive)
        return routes
    }

    static func receipt(_ result: IngestResult) -> JSONResponse {
        JSONResponse(
            status: result.outcome == .unrecognized ? .accepted : .ok,
            body: .object([
                "deliveryId": .string(result.deliveryId), "alertId": .string(result.alertId),
                "outcome": .string(result.outcome.rawValue), "duplicateCount": .number(Double(result.duplicateCount)),
                "hubs": .array(result.hubs.map { $0.jsonValue() }),
            ]))
    }

    @Sendable func receive(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        try await authorize(request)
        // Read no more than the limit: a larger body is refused before it is buffered whole.
        let buffer = try await request.body.collect(upTo: maxBodyBytes)
        let receivedAt = ingest.timeSource.now()
        let delivery = IncomingDelivery(
            id: ingest.ids.next(), receivedAt: receivedAt,
            remoteAddress: context.remoteAddress?.ipAddress, contentType: request.headers[.contentType],
            body: Data(buffer.readableBytesView))
        let content = ingest.classify(delivery)
        if !allowedSubscriptions.isEmpty {
            // Every delivery that would be stored, recognised or not, must name an allowed
            // subscription: an unrecognised or malformed body is kept raw, so it is checked too.
            let named: Set<String>
            switch content {
            case .alert(let alert, _):
                named = SecureWebhookVerifier.subscriptions(
                    in: [alert.azureAlertId ?? ""] + alert.targetResourceIDs.map(\.original))
            case .unrecognized, .malformed:
                named = SecureWebhookVerifier.subscriptions(inText: String(decoding: delivery.body, as: UTF8.self))
            }
            guard !named.isDisjoint(with: allowedSubscriptions) else {
                throw Problem.forbidden("the delivery names no subscription this Standby accepts alerts from")
            }
        }
        let result = try await ingest.store(delivery, content: content)
        context.logger.info(
            "webhook delivery",
            metadata: [
                "delivery": .string(result.deliveryId), "alert": .string(result.alertId),
                "outcome": .string(result.outcome.rawValue),
            ])
        if case .malformed(let reason) = content {
            throw Problem(
                .badRequest, "malformed-payload", title: "The body is not valid JSON", detail: reason,
                extensions: ["deliveryId": .string(result.deliveryId), "alertId": .string(result.alertId)])
        }
        return try Self.receipt(result).response(from: request, context: context)
    }

    private func authorize(_ request: Request) async throws {
        if let header = request.headers[.authorization] {
            guard let credential = Authenticator.bearerCredential(header), let secureWebhook else {
                throw Problem.unauthorized("bearer tokens are accepted only when auth.secureWebhook is configured")
            }
            do {
                _ = try await secureWebhook.verify(bearer: credential, now: ingest.timeSource.now())
                return
            } catch let rejection as SecureWebhookVerifier.Rejection {
                throw Problem.unauthorized(rejection.description)
            }
        }
        guard authenticator.acceptsWebhooks else {
            throw Problem.unauthorized(
                "no webhook token is configured (auth.webhookTokens); Standby refuses unauthenticated deliveries",
                scheme: "Token")
        }
        guard let token = request.uri.queryParameters.get("token"), !token.isEmpty else {
            throw Problem.unauthorized("add ?token=<webhook token> to the webhook URL", scheme: "Token")
        }
        guard authenticator.isValidWebhookToken(token) else {
            throw Problem.unauthorized("the webhook token is not valid", scheme: "Token")
        }
    }
}

/// The webhook's way into the use case: classify and match hubs, ingest, count.
struct AlertIngest: Sendable {
    let topology: Topology
    let controlPlane: ControlPlane
    let timeSource: any TimeSource
    let ids: any IDSource
    let metrics: StandbyMetrics

    func classify(_ delivery: IncomingDelivery) -> DeliveryContent {
        DeliveryContent.classify(delivery.body, topology: topology)
    }

    func store(_ delivery: IncomingDelivery, content: DeliveryContent) async throws -> IngestResult {
        let result = try await controlPlane.ingest(delivery, content: content)
        let schema: String
        switch content {
        case .alert(let alert, _): schema = alert.schema.rawValue
        case .unrecognized: schema = "unrecognized"
        case .malformed: schema = "malformed"
        }
        metrics.count("standby_webhook_deliveries_total", [("schema", schema), ("outcome", result.outcome.rawValue)])
        if result.outcome == .duplicate || result.outcome == .stale {
            metrics.count("standby_duplicates_total", [("source", "webhook")])
        }
        return result
    }
}
