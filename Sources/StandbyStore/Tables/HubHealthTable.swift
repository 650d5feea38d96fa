import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives
import Synchronization

// The `hub_health` table: each hub's tracker state as JSON, with a revision that changes on every
// save, so that this process can trust its decoded copy while the revision matches.

enum HubHealthTable {
    static func state(_ hub: HubReference, in db: Database, cache: HubStateCache) throws -> HubHealthState {
        guard
            let revision = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT revision FROM hub_health WHERE deployment_id = ? AND hub_id = ?"),
                arguments: [hub.deploymentId, hub.hubId])
        else { return HubHealthState(deploymentId: hub.deploymentId, hubId: hub.hubId) }
        if let cached = cache.state(for: hub, revision: revision) { return cached }
        let text =
            try String.fetchOne(
                try db.cachedStatement(sql: "SELECT state FROM hub_health WHERE deployment_id = ? AND hub_id = ?"),
                arguments: [hub.deploymentId, hub.hubId]) ?? "{}"
        let state = try HubHealthState(json: JSONValue.decode(Data(text.utf8)))
        cache.store(state, for: hub, revision: revision)
        return state
    }

    static func save(_ state: HubHealthState, for hub: HubReference, at: Date, in db: Database, cache: HubStateCache)
        throws
    {
        // A fresh random revision, never reused: a rolled-back write cannot be mistaken for a stored one.
        let revision = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        try db.cachedStatement(
            sql: """
                INSERT INTO hub_health (deployment_id, hub_id, health, state, revision, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (deployment_id, hub_id) DO UPDATE SET health = excluded.health, state = excluded.state,
                    revision = excluded.revision, updated_at = excluded.updated_at
                """
        ).execute(arguments: [
            hub.deploymentId, hub.hubId, state.health.rawValue, state.jsonValue().compactString(), revision,
            Timestamp.format(at),
        ])
        cache.store(state, for: hub, revision: revision)
    }
}

/// This process's decoded copies of hub states, each valid for one stored revision.
public final class HubStateCache: Sendable {
    private let entries = Mutex<[HubReference: (revision: String, state: HubHealthState)]>([:])

    public init() {}

    func state(for hub: HubReference, revision: String) -> HubHealthState? {
        entries.withLock { entries in
            guard let entry = entries[hub], entry.revision == revision else { return nil }
            return entry.state
        }
    }

    func store(_ state: HubHealthState, for hub: HubReference, revision: String) {
        entries.withLock { $0[hub] = (revision, state) }
    }
}
