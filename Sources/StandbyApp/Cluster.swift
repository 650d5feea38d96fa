import Foundation
import StandbyPrimitives

/// This build's version, as instances report it to each other and to operators.
public enum StandbyVersion {
    public static let current = "0.15.0"
}

/// Who this process is among the instances sharing a store (`cluster.instance`, `cluster.region`,
/// `cluster.url` of the configuration).
public struct InstanceIdentity: Sendable, Hashable {
    public var id: String
    public var region: String?
    /// Where operators and peers reach this instance.
    public var url: String?
    public var version: String
    public var startedAt: Date

    public init(id: String, region: String?, url: String?, version: String = StandbyVersion.current, startedAt: Date) {
        self.id = id
        self.region = region
        self.url = url
        self.version = version
        self.startedAt = startedAt
    }
}

/// The instances sharing the store, who leads the singleton work (dispatch, ticks, reaping,
/// pruning) and under which fencing epoch, and what the store is (`GET /v1/cluster`).
public struct ClusterView: Sendable, Hashable {
    public enum Backend: String, Sendable, Hashable {
        case sqlite
        case postgres
    }

    public struct Instance: Sendable, Hashable {
        public var id: String
        public var region: String?
        public var url: String?
        public var version: String
        public var startedAt: String
        public var lastSeenAt: String
        public var leader: Bool

        public init(
            id: String, region: String?, url: String?, version: String, startedAt: String, lastSeenAt: String,
            leader: Bool
        ) {
            self.id = id
            self.region = region
            self.url = url
            self.version = version
            self.startedAt = startedAt
            self.lastSeenAt = lastSeenAt
            self.leader = leader
        }
    }

    public struct Leader: Sendable, Hashable {
        public var instance: String
        /// Grows by one at every change of holder; guarded writes carry it.
        public var epoch: Int
        /// When the lease lapses unless renewed; nil when it never does (one embedded instance).
        public var expiresAt: String?

        public init(instance: String, epoch: Int, expiresAt: String?) {
            self.instance = instance
            self.epoch = epoch
            self.expiresAt = expiresAt
        }
    }

    public struct Database: Sendable, Hashable {
        /// The server answering (`host:port`), or the file of an embedded database.
        public var host: String
        /// `primary` when it takes writes, `standby` when it only reads.
        public var role: String

        public init(host: String, role: String) {
            self.host = host
            self.role = role
        }
    }

    public var backend: Backend
    public var instances: [Instance]
    public var leader: Leader?
    public var database: Database

    public init(backend: Backend, instances: [Instance], leader: Leader?, database: Database) {
        self.backend = backend
        self.instances = instances
        self.leader = leader
        self.database = database
    }
}
