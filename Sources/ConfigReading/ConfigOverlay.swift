import Foundation
import Yams

extension ConfigFile {
    /// A configuration with a candidate's changes laid over it, as YAML text (`${VAR}` references
    /// kept for parsing): the candidate's `deployments` replace the base's; a top-level `policy`
    /// is merged into every deployment's policy, and `policies: {<deployment id>: {...}}` into the
    /// named ones (keys the candidate does not name keep the base's values).
    public static func overlay(base: String, candidate: String, candidateFile: String) throws -> String {
        func mapping(_ text: String, _ file: String) throws -> [String: Any] {
            do {
                // Every scalar stays text (no YAML 1.1 typing: "12:00" is no number of minutes), as the
                // schema reads scalars.
                guard let value = try Yams.load(yaml: text, .basic) as? [String: Any] else {
                    throw ConfigError(file: file, problems: [ConfigProblem(path: "", reason: "expected a mapping")])
                }
                return value
            } catch let error as ConfigError {
                throw error
            } catch {
                throw ConfigError(file: file, problems: [ConfigProblem(path: "", reason: "not valid YAML: \(error)")])
            }
        }
        var document = try mapping(base, "config")
        let overlay = try mapping(candidate, candidateFile)
        let known: Set<String> = ["deployments", "policy", "policies"]
        if let unknown = overlay.keys.first(where: { !known.contains($0) }) {
            throw ConfigError(
                file: candidateFile,
                problems: [
                    ConfigProblem(path: unknown, reason: "unknown key (expected one of: deployments, policy, policies)")
                ])
        }
        if let deployments = overlay["deployments"] { document["deployments"] = deployments }
        let shared = overlay["policy"] as? [String: Any]
        let named = overlay["policies"] as? [String: Any] ?? [:]
        if shared != nil || !named.isEmpty, let deployments = document["deployments"] as? [Any] {
            document["deployments"] = deployments.map { item -> Any in
                guard var deployment = item as? [String: Any] else { return item }
                var policy = deployment["policy"] as? [String: Any] ?? [:]
                if let shared { policy = merged(policy, shared) }
                if let id = deployment["id"] as? String, let own = named[id] as? [String: Any] {
                    policy = merged(policy, own)
                }
                deployment["policy"] = policy
                return deployment
            }
        }
        return try Yams.dump(object: document)
    }

    private static func merged(_ base: [String: Any], _ overlay: [String: Any]) -> [String: Any] {
        var result = base
        for (key, value) in overlay {
            if let inner = value as? [String: Any], let current = result[key] as? [String: Any] {
                result[key] = merged(current, inner)
            } else {
                result[key] = value
            }
        }
        return result
    }
}
