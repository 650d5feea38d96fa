import Foundation
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// A deployment's recent history drawn as SVG, server-side: a band per hub coloured by its health
/// over time, the serving hub under it, and a mark for every failure window, failover or
/// failback, operator action, hold, maintenance window and drill, each with its reason as a tooltip and, for decisions, a
/// link to the event. The same marks are listed as text below the picture.
struct ConsoleTimeline {
    struct Mark {
        var at: Date
        var kind: String
        var text: String
        var link: String?
    }

    let deployment: DeploymentView
    let start: Date
    let end: Date
    let events: [EventRecord]

    static let width = 1000.0
    static let left = 130.0
    static let bandHeight = 26.0

    /// The health segments of `hub`: each change ends one segment and starts the next; before the
    /// first change the hub was in the state that change left.
    func segments(of hub: String) -> [(from: Date, to: Date, health: String)] {
        let changes = events.filter { $0.type == "hub.health_changed" && $0.hub == hub }
            .compactMap { event -> (Date, String, String)? in
                guard let at = Timestamp.parse(event.at), let from = event.data["from"]?.stringValue,
                    let to = event.data["to"]?.stringValue
                else { return nil }
                return (at, from, to)
            }
        let current = deployment.hubs.first { $0.id == hub }?.health.rawValue ?? "unknown"
        var health = changes.first?.1 ?? current
        var since = start
        var segments: [(Date, Date, String)] = []
        for (at, _, to) in changes {
            segments.append((since, at, health))
            (since, health) = (at, to)
        }
        segments.append((since, end, health))
        return segments.filter { $0.1 > $0.0 }
    }

    /// Who served when: the decisions' targets, and before the first the hub it moved from.
    func serving() -> [(from: Date, to: Date, hubs: String)] {
        let moves = events.filter { $0.type == "failover.decided" && $0.data["dryRun"] != .bool(true) }
            .compactMap { event -> (Date, String?, String?)? in
                guard let at = Timestamp.parse(event.at) else { return nil }
                return (at, event.data["from"]?.stringValue, event.data["to"]?.stringValue)
            }
            .filter { $0.2 != nil }
        var hubs = moves.first?.1 ?? deployment.serving.joined(separator: ", ")
        var since = start
        var spans: [(Date, Date, String)] = []
        for (at, _, to) in moves {
            spans.append((since, at, hubs))
            (since, hubs) = (at, to ?? hubs)
        }
        spans.append((since, end, moves.isEmpty ? deployment.serving.joined(separator: ", ") : hubs))
        return spans.filter { $0.1 > $0.0 }
    }

    func marks() -> [Mark] {
        events.compactMap { event -> Mark? in
            guard let at = Timestamp.parse(event.at) else { return nil }
            let data = event.data
            switch event.type {
            case "failover.decided":
                let id = data["failoverEventId"]?.stringValue
                return Mark(
                    at: at, kind: data["kind"]?.stringValue ?? "failover",
                    text:
                        "\(data["kind"]?.stringValue ?? "move") \(data["from"]?.stringValue ?? "-") → \(data["to"]?.stringValue ?? "-"): \(data["reason"]?.stringValue ?? "")",
                    link: id.map { "/console/failover-events/\($0)" })
            case "window.opened", "window.declared_down", "window.closed":
                return Mark(
                    at: at, kind: "window",
                    text:
                        "\(event.hub ?? ""): failure window \(event.type.dropFirst("window.".count).replacingOccurrences(of: "_", with: " ")) (\(data["failureCount"].map { JSONValue.format($0.doubleValue ?? 0) } ?? "?") failures)",
                    link: nil)
            case let type where type.hasPrefix("operator."):
                return Mark(
                    at: at, kind: "operator",
                    text: "\(event.actor): \(type.dropFirst("operator.".count)), \(data["reason"]?.stringValue ?? "")",
                    link: nil)
            case "automation.held":
                return Mark(at: at, kind: "hold", text: "held: \(data["reason"]?.stringValue ?? "")", link: nil)
            case "automation.suppressed":
                return Mark(
                    at: at, kind: "maintenance", text: "suppressed: \(data["reason"]?.stringValue ?? "")", link: nil)
            case "automation.pause_expired":
                return Mark(at: at, kind: "operator", text: "pause expired: automation active again", link: nil)
            case "maintenance.started", "maintenance.ended":
                let hubs = data["hubs"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? ""
                return Mark(
                    at: at, kind: "maintenance",
                    text:
                        "maintenance \(data["maintenanceWindowId"]?.stringValue ?? "") \(event.type.dropFirst("maintenance.".count)) (\(hubs)): \(data["reason"]?.stringValue ?? "")",
                    link: nil)
            case "drill.started", "drill.finished":
                return Mark(
                    at: at, kind: "operator",
                    text:
                        "drill \(data["drillId"]?.stringValue ?? "") \(event.type.dropFirst("drill.".count))"
                        + (data["reason"]?.stringValue.map { ": \($0)" } ?? "")
                        + (data["status"]?.stringValue.map { " (\($0))" } ?? ""),
                    link: nil)
            default:
                return nil
            }
        }
    }

    func x(_ date: Date) -> Double {
        let span = max(1, end.timeIntervalSince(start))
        return Self.left + (Self.width - Self.left - 10) * min(1, max(0, date.timeIntervalSince(start) / span))
    }

    static func colour(_ health: String) -> String {
        switch health {
        case "up": return "#2e7d32"
        case "degraded": return "#e0a100"
        case "down": return "#c62828"
        default: return "#9aa1a9"
        }
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The picture: text in it is escaped here, since it is markup the templates insert as it is.
    func svg() -> String {
        let hubs = deployment.hubs.map(\.id)
        let rows = Double(hubs.count + 1)
        let height = 30 + rows * (Self.bandHeight + 8) + 40
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(Self.width)) \(Int(height))" role="img" \
            aria-labelledby="timeline-title" class="timeline"><title id="timeline-title">Health, serving hub and \
            decisions of \(Self.escaped(deployment.id)) from \(Timestamp.format(start)) to \(Timestamp.format(end))</title>
            """
        for (row, hub) in hubs.enumerated() {
            let y = 20 + Double(row) * (Self.bandHeight + 8)
            out += "<text x=\"0\" y=\"\(y + 17)\" font-size=\"13\">\(Self.escaped(hub))</text>"
            for segment in segments(of: hub) {
                let x0 = x(segment.from)
                let x1 = x(segment.to)
                out +=
                    "<rect x=\"\(x0)\" y=\"\(y)\" width=\"\(max(1, x1 - x0))\" height=\"\(Self.bandHeight)\" fill=\"\(Self.colour(segment.health))\">"
                    + "<title>\(Self.escaped(hub)) \(segment.health) from \(Timestamp.format(segment.from)) to \(Timestamp.format(segment.to))</title></rect>"
            }
        }
        let servingY = 20 + Double(hubs.count) * (Self.bandHeight + 8)
        out += "<text x=\"0\" y=\"\(servingY + 17)\" font-size=\"13\">serving</text>"
        for (index, span) in serving().enumerated() {
            let x0 = x(span.from)
            let x1 = x(span.to)
            out +=
                "<rect x=\"\(x0)\" y=\"\(servingY)\" width=\"\(max(1, x1 - x0))\" height=\"\(Self.bandHeight)\" fill=\"\(index % 2 == 0 ? "#1565c0" : "#5e92f3")\">"
                + "<title>\(Self.escaped(span.hubs)) serving from \(Timestamp.format(span.from))</title></rect>"
                + "<text x=\"\(x0 + 4)\" y=\"\(servingY + 17)\" font-size=\"12\" fill=\"#fff\">\(Self.escaped(span.hubs))</text>"
        }
        let bottom = servingY + Self.bandHeight
        for mark in marks() {
            let position = x(mark.at)
            let colour =
                mark.kind == "window"
                ? "#8a5300" : mark.kind == "operator" ? "#6a1b9a" : mark.kind == "maintenance" ? "#00695c" : "#000"
            var line =
                "<line x1=\"\(position)\" y1=\"12\" x2=\"\(position)\" y2=\"\(bottom + 6)\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-dasharray=\"\(mark.kind == "window" ? "3 3" : "none")\"/>"
                + "<circle cx=\"\(position)\" cy=\"\(bottom + 12)\" r=\"6\" fill=\"\(colour)\" tabindex=\"0\">"
                + "<title>\(Timestamp.format(mark.at)) \(Self.escaped(mark.text))</title></circle>"
            if let link = mark.link { line = "<a href=\"\(Self.escaped(link))\">\(line)</a>" }
            out += line
        }
        out +=
            "<text x=\"\(Self.left)\" y=\"\(height - 6)\" font-size=\"12\">\(Timestamp.format(start))</text>"
            + "<text x=\"\(Self.width - 10)\" y=\"\(height - 6)\" font-size=\"12\" text-anchor=\"end\">\(Timestamp.format(end))</text>"
        return out + "</svg>"
    }
}
