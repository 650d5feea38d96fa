import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StandbyCore
import StandbyPrimitives

/// `standby status`: what an SRE wants to see first, from a running Standby's API.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show deployments, hub health, open failure windows and pending commands of a running Standby.")

    @Option(help: "Base URL of Standby.")
    var url = "http://127.0.0.1:8080"

    @Option(help: "API token with the reader role. Defaults to $STANDBY_API_TOKEN.")
    var token: String?

    func run() async throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["STANDBY_API_TOKEN"], !token.isEmpty else {
            throw ValidationError("give --token or set STANDBY_API_TOKEN")
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let deployments = try await get("/v1/deployments", token: token, client: client)
            let commands = try await get("/v1/commands?status=pending&limit=1000", token: token, client: client)
            // A Standby from before the cluster view answers 404: the rest is still worth showing.
            let cluster = try? await get("/v1/cluster", token: token, client: client)
            try await client.shutdown()
            print(StatusReport.render(deployments: deployments, commands: commands, cluster: cluster))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func get(_ path: String, token: String, client: HTTPClient) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        let json = (try? JSONValue.decode(Data(body.readableBytesView))) ?? .null
        guard (200..<300).contains(response.status.code) else {
            throw CommandFailure("\(path): HTTP \(response.status.code) \(json["detail"]?.stringValue ?? "")")
        }
        return json
    }
}

enum StatusReport {
    static func render(deployments: JSONValue, commands: JSONValue, cluster: JSONValue? = nil) -> String {
        var out: [String] = []
        if let cluster, let instances = cluster["instances"]?.arrayValue {
            let leader = cluster["leader"].flatMap { leader -> String? in
                guard let instance = leader["instance"]?.stringValue else { return nil }
                return "\(instance) (epoch \(leader["epoch"].map { JSONValue.format($0.doubleValue ?? 0) } ?? "?"))"
            }
            out.append(
                "Cluster: \(cluster["backend"]?.stringValue ?? "?") database \(cluster["database"]?["host"]?.stringValue ?? "?") "
                    + "(\(cluster["database"]?["role"]?.stringValue ?? "?")), leader \(leader ?? "none")")
            out.append(
                textTable(
                    ["INSTANCE", "REGION", "VERSION", "STARTED", "LAST SEEN", "LEADER"],
                    instances.map { instance in
                        [
                            instance["id"]?.stringValue ?? "", instance["region"]?.stringValue ?? "-",
                            instance["version"]?.stringValue ?? "", instance["startedAt"]?.stringValue ?? "",
                            instance["lastSeenAt"]?.stringValue ?? "", instance["leader"] == .bool(true) ? "yes" : "no",
                        ]
                    }))
            out.append("")
        }
        let items = deployments["items"]?.arrayValue ?? []
        out.append(
            textTable(
                ["DEPLOYMENT", "PATTERN", "SERVING", "AUTOMATION", "LAST FAILOVER"],
                items.map { deployment in
                    let automation = deployment["automation"]
                    var state = automation?["state"]?.stringValue ?? "?"
                    if let reason = automation?["reason"]?.stringValue { state += ": \(reason)" }
                    if automation?["failbackReady"] == .bool(true) { state += " (failback ready)" }
                    let last = deployment["lastFailover"].flatMap { event -> String? in
                        guard event != .null else { return nil }
                        return
                            "\(event["kind"]?.stringValue ?? "") \(event["status"]?.stringValue ?? "") \(event["createdAt"]?.stringValue ?? "")"
                    }
                    return [
                        deployment["id"]?.stringValue ?? "", deployment["pattern"]?.stringValue ?? "",
                        (deployment["serving"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ","),
                        state, last ?? "-",
                    ]
                }))
        out.append("")
        out.append(
            textTable(
                ["HUB", "DEPLOYMENT", "ROLE", "SERVING", "HEALTH", "SINCE", "SOURCES", "OPEN WINDOW", "READINESS"],
                items.flatMap { deployment in
                    (deployment["hubs"]?.arrayValue ?? []).map { hub in
                        let sources = (hub["sources"]?.arrayValue ?? []).map {
                            "\($0["source"]?.stringValue ?? "")=\($0["state"]?.stringValue ?? "")"
                        }
                        let window = hub["openWindow"].flatMap { window -> String? in
                            guard window != .null else { return nil }
                            let declared = window["declaredDownAt"]?.stringValue.map { ", DOWN at \($0)" } ?? ""
                            return
                                "\(window["failureCount"]?.stringValue ?? "?") failures since \(window["firstFailureAt"]?.stringValue ?? "?")\(declared)"
                        }
                        // Only the checks that are not ready: "ready" when all are.
                        let checks = hub["readiness"]?.arrayValue ?? []
                        let notReady = checks.filter { $0["status"]?.stringValue != "ready" }.map {
                            "\($0["check"]?.stringValue ?? "")=\($0["status"]?.stringValue ?? "")"
                        }
                        let readiness =
                            checks.isEmpty ? "-" : notReady.isEmpty ? "ready" : notReady.joined(separator: " ")
                        return [
                            hub["id"]?.stringValue ?? "", deployment["id"]?.stringValue ?? "",
                            hub["role"]?.stringValue ?? "",
                            hub["serving"] == .bool(true) ? "yes" : "no",
                            hub["health"]?.stringValue?.uppercased() ?? "",
                            hub["healthSince"]?.stringValue ?? "-",
                            sources.isEmpty ? "-" : sources.joined(separator: " "),
                            window ?? "-", readiness,
                        ]
                    }
                }))
        out.append("")
        let pending = commands["items"]?.arrayValue ?? []
        if pending.isEmpty {
            out.append("No pending commands.")
        } else {
            out.append(
                textTable(
                    ["PENDING COMMAND", "DEPLOYMENT", "KIND", "HUB", "FROM → TO", "CREATED"],
                    pending.map { command in
                        [
                            command["id"]?.stringValue ?? "", command["deploymentId"]?.stringValue ?? "",
                            command["kind"]?.stringValue ?? "", command["hub"]?.stringValue ?? "",
                            "\(command["fromHub"]?.stringValue ?? "-") → \(command["toHub"]?.stringValue ?? "-")",
                            command["createdAt"]?.stringValue ?? "",
                        ]
                    }))
        }
        return out.joined(separator: "\n")
    }
}

/// Columns padded to their widest cell, two spaces apart, the last one unpadded.
func textTable(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count {
            widths[index] = max(widths[index], cell.count)
        }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
