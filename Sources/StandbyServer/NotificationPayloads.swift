import Foundation
import StandbyApp
import StandbyPrimitives

/// The body each kind of receiver expects for a notification, built as JSON values so that every
/// string is escaped by the encoder (summaries carry operators' free text).
///
/// Formats, as the vendors document them:
/// - Slack incoming webhooks: `text` (the fallback shown in notifications) and Block Kit `blocks`
///   (https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit/blocks).
/// - Microsoft Teams Workflows ("Post to a channel when a webhook request is received"): a
///   `message` whose `attachments` hold one Adaptive Card with `contentType`
///   `application/vnd.microsoft.card.adaptive` (https://learn.microsoft.com/microsoftteams/platform/
///   webhooks-and-connectors/how-to/connectors-using).
/// - PagerDuty Events API v2: `routing_key`, `event_action` (`trigger` / `resolve`), `dedup_key`,
///   and for a trigger `payload` with `summary` (at most 1024 characters), `severity`, `source`,
///   `component`, `group`, `class`, `timestamp`, `custom_details`
///   (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).
enum NotificationPayloads {
    static let pagerDutySummaryLimit = 1024
    /// Block Kit refuses a section or context text longer than this (the whole message then fails).
    static let slackBlockTextLimit = 3000

    static func body(for notification: NotificationView, receiver: NotificationReceiver, instance: String) -> JSONValue
    {
        switch receiver.kind {
        case .slack: return slack(notification)
        case .teams: return teams(notification)
        case .pagerduty:
            return pagerDuty(notification, routingKey: receiver.routingKey?.value ?? "", instance: instance)
        case .webhook: return webhook(notification)
        }
    }

    /// "Failover", "Resolved", ...: the headline of a card.
    static func title(_ notification: NotificationView) -> String {
        let words = notification.event.rawValue.split(separator: "_").map { $0.capitalized }.joined(separator: " ")
        return "Standby · \(words)"
    }

    static func facts(_ notification: NotificationView) -> [(String, String)] {
        [
            ("Deployment", notification.deploymentId), ("Event", notification.event.rawValue),
            ("Severity", notification.severity.rawValue), ("At", notification.occurredAt),
        ]
            + notification.details.filter { $0.key != "deployment" }.sorted { $0.key < $1.key }.map {
                ($0.key, $0.value)
            }
    }

    /// Slack's control characters in text (`<!channel>`, `<url|label>`) escaped as Slack documents,
    /// so that free text in a reason can neither mention everyone nor disguise a link.
    static func slackEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    static func slack(_ notification: NotificationView) -> JSONValue {
        let context = String(
            slackEscaped(facts(notification).map { "*\($0.0)*: \($0.1)" }.joined(separator: " · "))
                .prefix(slackBlockTextLimit))
        let summary = slackEscaped(notification.summary)
        let section = String(summary.prefix(slackBlockTextLimit))
        return .object([
            "text": .string(summary),
            "blocks": .array([
                .object([
                    "type": .string("header"),
                    "text": .object(["type": .string("plain_text"), "text": .string(title(notification))]),
                ]),
                .object([
                    "type": .string("section"),
                    "text": .object(["type": .string("mrkdwn"), "text": .string(section)]),
                ]),
                .object([
                    "type": .string("context"),
                    "elements": .array([.object(["type": .string("mrkdwn"), "text": .string(context)])]),
                ]),
            ]),
        ])
    }

    static func teams(_ notification: NotificationView) -> JSONValue {
        let card: JSONValue = .object([
            "$schema": .string("http://adaptivecards.io/schemas/adaptive-card.json"),
            "type": .string("AdaptiveCard"),
            "version": .string("1.4"),
            "body": .array([
                .object([
                    "type": .string("TextBlock"), "text": .string(title(notification)), "weight": .string("Bolder"),
                    "size": .string("Medium"), "wrap": .bool(true),
                ]),
                .object(["type": .string("TextBlock"), "text": .string(notification.summary), "wrap": .bool(true)]),
                .object([
                    "type": .string("FactSet"),
                    "facts": .array(
                        facts(notification).map { .object(["title": .string($0.0), "value": .string($0.1)]) }),
                ]),
            ]),
        ])
        return .object([
            "type": .string("message"),
            "attachments": .array([
                .object([
                    "contentType": .string("application/vnd.microsoft.card.adaptive"), "contentUrl": .null,
                    "content": card,
                ])
            ]),
        ])
    }

    static func pagerDuty(_ notification: NotificationView, routingKey: String, instance: String) -> JSONValue {
        var body: [String: JSONValue] = [
            "routing_key": .string(routingKey),
            "event_action": .string(notification.action.rawValue),
            "dedup_key": .string(notification.incidentKey),
        ]
        if notification.action == .trigger {
            body["payload"] = .object([
                "summary": .string(String(notification.summary.prefix(pagerDutySummaryLimit))),
                "severity": .string(notification.severity.rawValue),
                "source": .string("standby/\(instance)"),
                "component": .string(
                    notification.details["from"] ?? notification.details["hub"] ?? notification.deploymentId),
                "group": .string(notification.deploymentId),
                "class": .string(notification.event.rawValue),
                "timestamp": .string(notification.occurredAt),
                "custom_details": .object(notification.details.mapValues(JSONValue.string)),
            ])
        }
        return .object(body)
    }

    /// Standby's own JSON: the notification as `GET /v1/notifications` shows it, less the outbox's
    /// delivery bookkeeping.
    static func webhook(_ notification: NotificationView) -> JSONValue {
        .object([
            "id": .string(notification.id), "event": .string(notification.event.rawValue),
            "deploymentId": .string(notification.deploymentId), "incidentKey": .string(notification.incidentKey),
            "action": .string(notification.action.rawValue), "severity": .string(notification.severity.rawValue),
            "summary": .string(notification.summary), "occurredAt": .string(notification.occurredAt),
            "details": .object(notification.details.mapValues(JSONValue.string)),
        ])
    }
}
