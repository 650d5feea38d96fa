import Foundation
import StandbyApp
import StandbyPrimitives

// `/v1/cluster`: the instances sharing the database, the leader and its epoch, and the database
// itself, on the generated server.
extension GeneratedAPI {
    func getCluster(_ input: Operations.getCluster.Input) async throws -> Operations.getCluster.Output {
        let view = try await store.cluster(seenFrom: instance, now: timeSource.now())
        return .ok(.init(body: .json(try Components.Schemas.Cluster(view))))
    }
}

extension Components.Schemas.Cluster {
    init(_ view: ClusterView) throws {
        self.init(
            backend: try contractCase(view.backend.rawValue),
            instances: view.instances.map {
                .init(
                    id: $0.id, region: $0.region, url: $0.url, version: $0.version, startedAt: $0.startedAt,
                    lastSeenAt: $0.lastSeenAt, leader: $0.leader)
            },
            leader: view.leader.map { .init(instance: $0.instance, epoch: $0.epoch, expiresAt: $0.expiresAt) },
            database: .init(host: view.database.host, role: try contractCase(view.database.role)))
    }
}
