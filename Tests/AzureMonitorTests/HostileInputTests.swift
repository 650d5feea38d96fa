import AzureMonitor
import Foundation
import PropertyBased
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

/// The decoder never crashes or hangs: whatever arrives ends as an alert, `unrecognized`, or
/// `malformed` (a thrown MalformedPayload).
@Suite("Hostile input")
struct HostileInputTests {
    static let fixtures = Fixtures.allNames

    /// Classification must return or throw MalformedPayload; anything else is a bug.
    func survive(_ data: Data) {
        do {
            _ = try AzureMonitorDecoder.classify(data)
        } catch {
            // A typed throw: only MalformedPayload can arrive here.
        }
    }

    @Test("every truncation of every fixture", arguments: fixtures)
    func truncations(_ name: String) throws {
        let data = try Fixtures.data(name)
        for length in stride(from: 0, to: data.count, by: max(1, data.count / 97)) {
            survive(data.prefix(length))
        }
    }

    /// Replaces the value at one random place of the document with a value of another type.
    static func mutate(_ value: JSONValue, choice: inout UInt64) -> JSONValue {
        func next() -> UInt64 {
            choice = choice &* 6364136223846793005 &+ 1442695040888963407
            return choice >> 33
        }
        let replacements: [JSONValue] = [
            .null, .bool(true), .number(1e308), .number(-0.0), .number(Double(Int64.max)), .string(""),
            .string(String(repeating: "x", count: 20_000)), .array([]), .object([:]),
            .string("2026-13-45T99:99:99Z"), .string("[{\"ImpactedRegions\":\"oops\"}]"), .array([.null, .number(1)]),
        ]
        switch value {
        case .object(var members) where !members.isEmpty && next() % 4 != 0:
            let keys = members.keys.sorted()
            let key = keys[Int(next() % UInt64(keys.count))]
            members[key] = mutate(members[key]!, choice: &choice)
            return .object(members)
        case .array(var items) where !items.isEmpty && next() % 4 != 0:
            let index = Int(next() % UInt64(items.count))
            items[index] = mutate(items[index], choice: &choice)
            return .array(items)
        default:
            return replacements[Int(next() % UInt64(replacements.count))]
        }
    }

    @Test("wrong types, huge strings and extreme numbers anywhere in real payloads")
    func typeMutations() async throws {
        let documents = try Self.fixtures.map { try Fixtures.json($0) }
        await propertyCheck(count: 400, input: Gen.int(in: 0...Int.max)) { seed in
            var choice = UInt64(seed)
            let document = documents[seed % documents.count]
            var mutated = document
            for _ in 0..<(1 + seed % 3) { mutated = Self.mutate(mutated, choice: &choice) }
            survive(mutated.canonicalData())
        }
    }

    @Test("deep nesting, invalid UTF-8, duplicate keys, numbers out of range, oddities")
    func oddities() throws {
        let common = try Fixtures.data("test-action-metric-static.json")
        var invalidUTF8 = common
        invalidUTF8.insert(contentsOf: [0xC3, 0x28, 0xFF, 0xFE], at: 40)
        let cases: [Data] = [
            Data((String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)).utf8),
            Data((String(repeating: "{\"a\":", count: 50_000) + "1" + String(repeating: "}", count: 50_000)).utf8),
            invalidUTF8,
            Data(
                #"{"schemaId":"nope","schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"alertId":"a"},"essentials":{}}}"#
                    .utf8),
            Data(
                #"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"alertId":1e400,"severity":-1e400,"firedDateTime":123456789012345678901234567890}}}"#
                    .utf8),
            Data(#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":[],"alertContext":"x"}}"#.utf8),
            Data(#"{"schemaId":"azureMonitorCommonAlertSchema","data":"essentials"}"#.utf8),
            Data(#"{"schemaId":null}"#.utf8),
            Data(#""azureMonitorCommonAlertSchema""#.utf8),
            Data([0x00, 0x01, 0x02]),
            Data("\u{FEFF}{}".utf8),
            Data(
                #"{"schemaId":"Microsoft.Insights/activityLogs","data":{"context":{"activityLog":{"properties":{"impactedServices":"[[[[[[[[["}}}}}"#
                    .utf8),
        ]
        for data in cases { survive(data) }
        // The decoder is fast on big bodies too: a 1 MiB alert decodes in well under a second.
        var big = try Fixtures.json("test-action-metric-static.json")
        if case .object(var root) = big, case .object(var data)? = root["data"],
            case .object(var essentials)? = data["essentials"]
        {
            essentials["description"] = .string(String(repeating: "é", count: 500_000))
            data["essentials"] = .object(essentials)
            root["data"] = .object(data)
            big = .object(root)
        }
        guard case .recognized(let alert) = try AzureMonitorDecoder.classify(big.canonicalData()) else {
            Issue.record("a big but valid alert was not recognized")
            return
        }
        #expect(alert.description?.count == 500_000)
    }
}
