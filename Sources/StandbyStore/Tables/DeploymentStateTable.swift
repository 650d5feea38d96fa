import Foundation
import GRDB
import StandbyApp
import StandbyCore
import StandbyPrimitives

// The `deployment_state` table: each deployment's routing state as JSON.

enum DeploymentStateTable {
    static func state(_ deploymentId: String, in db: Database) throws -> DeploymentState? {
        guard
            let text = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT state FROM deployment_state WHERE deployment_id = ?"),
                arguments: [deploymentId])
        else { return nil }
        return try JSONDecoder().decode(DeploymentState.self, from: Data(text.utf8))
    }

    static func save(_ state: DeploymentState, deploymentId: String, at: Date, in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO deployment_state (deployment_id, state, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (deployment_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                """
        ).execute(arguments: [
            deploymentId, String(decoding: try JSONEncoder().encode(state), as: UTF8.self), Timestamp.format(at),
        ])
    }
}
