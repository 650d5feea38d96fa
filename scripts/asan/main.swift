// Drives the Azure Monitor decoder and the JSON parser over every fixture, truncated at many
// points and with bytes flipped, under the address sanitizer (scripts/asan-decoders.sh).
import AzureMonitor
import Foundation
import StandbyCore

func run(folder: String) throws -> Int {
var cases = 0
for name in try FileManager.default.contentsOfDirectory(atPath: folder).filter({ $0.hasSuffix(".json") }).sorted() {
    let data = try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(name))
    var inputs: [Data] = [data]
    for length in stride(from: 0, to: data.count, by: max(1, data.count / 50)) { inputs.append(data.prefix(length)) }
    var seed: UInt64 = 0x9E3779B97F4A7C15
    for _ in 0..<200 {
        var mutated = data
        for _ in 0..<3 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let index = Int(seed >> 33) % max(1, mutated.count)
            mutated[index] = UInt8(truncatingIfNeeded: seed >> 17)
        }
        inputs.append(mutated)
    }
    for input in inputs {
        _ = try? AzureMonitorDecoder.classify(input)
        if let value = try? JSONValue.decode(input) { _ = value.canonicalData() }
        cases += 1
    }
}
let deep = Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)
_ = try? AzureMonitorDecoder.classify(deep)
return cases + 1
}

let count = try run(folder: CommandLine.arguments[1])
FileHandle.standardError.write(Data("address sanitizer: \(count) inputs decoded\n".utf8))
