import Foundation
import Hummingbird
import StandbyApp
import StandbyCore
import StandbyPrimitives
import Synchronization

/// Whether the process should receive traffic. It turns false when shutdown begins, before the
/// listener closes, so that load balancers stop sending first.
public final class Readiness: Sendable {
    private let draining = Atomic<Bool>(false)
    public init() {}
    public func beginDraining() { draining.store(true, ordering: .relaxed) }
    public var isDraining: Bool { draining.load(ordering: .relaxed) }
}

/// `GET /healthz` (the process answers) and `GET /readyz` (the database takes writes and is migrated).
struct HealthController {
    let store: any ControlStore
    let readiness: Readiness
    let timeSource: any TimeSource

    struct Status: ResponseEncodable {
        var status: String
    }

    func register(on router: Router<StandbyRequestContext>) {
        router.get("healthz") { _, _ in Status(status: "ok") }
        router.get("readyz") { _, _ in
            guard !readiness.isDraining else {
                throw Problem(
                    .serviceUnavailable, "shutting-down", title: "Standby is shutting down",
                    headers: [.retryAfter: "5"])
            }
            try await store.checkReady(now: timeSource.now())
            return Status(status: "ready")
        }
    }
}
