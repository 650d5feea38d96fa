import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import StandbyCore
import StandbyPrimitives

/// One check's outcome, as it becomes a health report.
public struct CheckResult: Sendable, Hashable {
    public var hub: String
    public var target: String
    /// When the check started: the report's `observedAt`, in the probe's own clock.
    public var observedAt: Date
    public var success: Bool
    public var latencyMs: Double
    public var statusCode: Int?
    /// Short and human: "200", "503", "timeout after 5s", "connection refused".
    public var detail: String

    public init(
        hub: String, target: String, observedAt: Date, success: Bool, latencyMs: Double, statusCode: Int?,
        detail: String
    ) {
        self.hub = hub
        self.target = target
        self.observedAt = observedAt
        self.success = success
        self.latencyMs = latencyMs
        self.statusCode = statusCode
        self.detail = detail
    }
}

/// Runs the checks of one target. HTTP checks go through a client of their own (its redirect rule
/// and trust roots are the target's); TCP checks connect and close.
public final class TargetChecker: Sendable {
    public let target: ProbeTarget
    let client: HTTPClient?
    let timeSource: any TimeSource

    public init(target: ProbeTarget, timeSource: any TimeSource = SystemTimeSource()) throws {
        self.target = target
        self.timeSource = timeSource
        guard case .http = target.check else {
            client = nil
            return
        }
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: target.followRedirects ? .follow(max: 5, allowCycles: false) : .disallow)
        if let caFile = target.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func shutdown() async {
        try? await client?.shutdown()
    }

    public func run() async -> CheckResult {
        let observedAt = timeSource.now()
        let started = ContinuousClock.now
        var result = CheckResult(
            hub: target.hub, target: target.name, observedAt: observedAt, success: false, latencyMs: 0,
            statusCode: nil, detail: "")
        do {
            switch target.check {
            case .http(let url, let method, let expected, let bodyContains):
                let (status, body) = try await http(url: url, method: method, readBody: bodyContains != nil)
                result.statusCode = status
                if !expected.contains(where: { $0.contains(status) }) {
                    result.detail = "\(status)"
                } else if let bodyContains, !(body ?? "").contains(bodyContains) {
                    result.detail = "\(status), body lacks \"\(bodyContains.prefix(40))\""
                } else {
                    result.success = true
                    result.detail = "\(status)"
                }
            case .tcp(let host, let port):
                try await connect(host: host, port: port)
                result.success = true
                result.detail = "connected"
            }
        } catch {
            result.detail = Self.describe(error, timeout: target.timeout)
        }
        result.latencyMs = Double((ContinuousClock.now - started) / .microseconds(1)) / 1000
        return result
    }

    private func http(url: String, method: ProbeTarget.Method, readBody: Bool) async throws -> (Int, String?) {
        guard let client else { throw CheckFailure("no HTTP client") }
        var request = HTTPClientRequest(url: url)
        request.method = method == .HEAD ? .HEAD : .GET
        request.headers.add(name: "User-Agent", value: "standby-probe")
        for header in target.headers { request.headers.replaceOrAdd(name: header.name, value: header.value) }
        let deadline = NIODeadline.now() + .milliseconds(Int64(target.timeout * 1000))
        let response = try await client.execute(request, deadline: deadline)
        var body: String?
        if readBody {
            body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        } else {
            for try await _ in response.body {}
        }
        return (Int(response.status.code), body)
    }

    private func connect(host: String, port: Int) async throws {
        let timeout = TimeAmount.milliseconds(Int64(target.timeout * 1000))
        let channel = try await withThrowingTaskGroup(of: (any Channel)?.self) { group in
            group.addTask {
                try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(timeout)
                    .connect(host: host, port: port).get()
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(self.target.timeout * 1000)))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let channel else { throw CheckFailure("timeout after \(Self.seconds(target.timeout))") }
        try? await channel.close()
    }

    struct CheckFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The failure as an on-call engineer reads it on a phone: no stack of library types.
    static func describe(_ error: any Error, timeout: TimeInterval) -> String {
        if let failure = error as? CheckFailure { return failure.description }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return "timeout after \(seconds(timeout))"
            case .remoteConnectionClosed: return "connection closed by the target"
            default: break
            }
        }
        if error is ChannelError, case ChannelError.connectTimeout = error {
            return "timeout after \(seconds(timeout))"
        }
        let text = String(describing: error)
        if text.contains("ECONNREFUSED") || text.lowercased().contains("connection refused") {
            return "connection refused"
        }
        if text.contains("ECONNRESET") || text.lowercased().contains("connection reset") { return "connection reset" }
        if text.contains("EHOSTUNREACH") || text.contains("ENETUNREACH") { return "host unreachable" }
        if text.lowercased().contains("timeout") || text.lowercased().contains("timed out") {
            return "timeout after \(seconds(timeout))"
        }
        if error is NIOSSLError || text.contains("SSL") || text.contains("TLS") { return "TLS handshake failed" }
        if text.contains("NXDOMAIN") || text.lowercased().contains("resolution") || text.contains("EAI_") {
            return "name resolution failed"
        }
        return String(singleLine(text).prefix(120))
    }

    static func seconds(_ value: TimeInterval) -> String {
        value == value.rounded() ? "\(Int(value))s" : String(format: "%.1fs", value)
    }
}

/// A one-line, printable form of an error's text.
private func singleLine(_ text: String) -> String {
    text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
}
