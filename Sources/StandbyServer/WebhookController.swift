import AzureMonitor
import Foundation
import Hummingbird
import Logging
import NIOCore
import StandbyCore
import StandbyStore

/// `POST /webhooks/azure-monitor`: where Azure Monitor action groups deliver alerts.
struct WebhookController {
    let authenticator: Authenticator
    let maxBodyBytes: Int
    let ingest: AlertIngest

    var endpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.post(use: receive)
        return routes
    }

    struct Receipt: ResponseEncodable {
        var deliveryId: String
        var alertId: String
        var outcome: DeliveryOutcome
        var duplicateCount: Int
        var hubs: [HubReference]
    }

    @Sendable func receive(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        try authorize(request)
        // Read no more than the limit: a larger body is refused before it is buffered whole.
        let buffer = try await request.body.collect(upTo: maxBodyBytes)
        let delivery = IncomingDelivery(
            id: UUID().uuidString.lowercased(), receivedAt: ingest.timeSource.now(),
            remoteAddress: context.remoteAddress?.ipAddress, contentType: request.headers[.contentType],
            body: Data(buffer.readableBytesView))
        let (content, result) = try await ingest.receive(delivery)
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
        let receipt = Receipt(
            deliveryId: result.deliveryId, alertId: result.alertId, outcome: result.outcome,
            duplicateCount: result.duplicateCount, hubs: result.hubs)
        var response = try receipt.response(from: request, context: context)
        response.status = result.outcome == .unrecognized ? .accepted : .ok
        return response
    }

    private func authorize(_ request: Request) throws {
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

/// The shell around the decoder and the store: classify, match hubs, commit.
struct AlertIngest: Sendable {
    let topology: Topology
    let alerts: any AlertRepository
    let controlPlane: ControlPlane
    let timeSource: any TimeSource
    let metrics: StandbyMetrics

    func receive(_ delivery: IncomingDelivery) async throws -> (DeliveryContent, IngestResult) {
        let content: DeliveryContent
        do {
            switch try AzureMonitorDecoder.classify(delivery.body) {
            case .recognized(let alert):
                content = .alert(alert, hubs: topology.hubsConcerned(by: alert))
            case .unrecognized(let reason):
                content = .unrecognized(reason: reason)
            }
        } catch {
            content = .malformed(reason: error.reason)
        }
        let hook = controlPlane.alertHook(now: delivery.receivedAt)
        let result = try await alerts.ingest(delivery, content: content, extra: hook)
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
        return (content, result)
    }
}
