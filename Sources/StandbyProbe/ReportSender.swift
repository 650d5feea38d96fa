import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import StandbyCore
import StandbyPrimitives
import Synchronization

/// Delivers buffered reports in batches, oldest first, to the first Standby that takes them: on a
/// failure the next URL of the list, and when none answers, a pause that grows exponentially with
/// jitter (the retry advice for clients of a service under trouble) before the next round.
/// Reports stay buffered until a Standby answered 2xx; a batch that every Standby refuses as
/// invalid (4xx other than 401, 403, 408, 429) is dropped and logged, since sending it again would
/// fail again.
public final class ReportSender: Sendable {
    public enum Outcome: Sendable, Equatable {
        case delivered(url: String)
        case rejected(status: Int, detail: String)
        case unavailable(retryAfter: TimeInterval?)
    }

    let endpoint: StandbyEndpoint
    let source: String
    let client: HTTPClient
    let logger: Logger
    let metrics: ProbeMetrics
    let timeSource: any TimeSource
    private let preferred = Mutex(0)

    public init(
        endpoint: StandbyEndpoint, source: String, metrics: ProbeMetrics, timeSource: any TimeSource, logger: Logger
    ) {
        self.endpoint = endpoint
        self.source = source
        self.metrics = metrics
        self.timeSource = timeSource
        self.logger = logger
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        if let caFile = endpoint.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// The pause before round `failures` (1, 2, …) after every URL failed: jitter over the upper
    /// half of 0.5 s · 2ⁿ⁻¹, capped at `maximumBackoff`, and never shorter than a `Retry-After` a
    /// Standby asked for. The cap is short because a health report is worth most while it is new:
    /// a Standby that comes back gets the buffered reports within seconds.
    public static let maximumBackoff: TimeInterval = 8

    public static func backoff(failures: Int, retryAfter: TimeInterval?, random: Double) -> TimeInterval {
        let ceiling = min(maximumBackoff, 0.5 * pow(2, Double(min(failures, 16) - 1)))
        return max(retryAfter ?? 0, ceiling * (0.5 + 0.5 * random))
    }

    /// Sends one batch, trying each URL in turn from the one that last worked.
    public func send(_ batch: [PendingReport]) async -> Outcome {
        let body = JSONValue.object(["reports": .array(batch.map { $0.json(source: source) })]).canonicalBytes()
        let start = preferred.withLock { $0 }
        var retryAfter: TimeInterval?
        var rejection: (Int, String)?
        for offset in 0..<endpoint.urls.count {
            let index = (start + offset) % endpoint.urls.count
            let url = endpoint.urls[index]
            var request = HTTPClientRequest(url: url + "/v1/health-reports")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Authorization", value: "Bearer \(endpoint.token.value)")
            request.headers.add(name: "User-Agent", value: "standby-probe")
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let response = try await client.execute(request, timeout: .milliseconds(Int64(endpoint.timeout * 1000)))
                let answer = String(buffer: try await response.body.collect(upTo: 64 * 1024))
                let status = Int(response.status.code)
                metrics.deliveryAttempt(url: url, status: status)
                switch status {
                case 200..<300:
                    preferred.withLock { $0 = index }
                    return .delivered(url: url)
                case 401, 403:
                    logger.error(
                        "Standby refused the probe's token; reports stay buffered",
                        metadata: ["url": .string(url), "status": .string("\(status)")])
                case 408, 429, 500...599:
                    retryAfter = RetryAfter.seconds(response.headers.first(name: "Retry-After")) ?? retryAfter
                case 400..<500:
                    rejection = (status, String(answer.prefix(500)))
                default:
                    break
                }
            } catch {
                metrics.deliveryAttempt(url: url, status: nil)
                logger.debug(
                    "report delivery failed", metadata: ["url": .string(url), "error": .string("\(type(of: error))")])
            }
        }
        if let rejection { return .rejected(status: rejection.0, detail: rejection.1) }
        return .unavailable(retryAfter: retryAfter)
    }
}
