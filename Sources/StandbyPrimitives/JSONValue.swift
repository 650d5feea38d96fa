import Foundation

/// An arbitrary JSON document. Azure Monitor payloads are too inconsistent for rigid `Codable`
/// structs (keys change case, enums switch between numbers and strings, arrays arrive as escaped
/// strings), so they are decoded into this first and read through tolerant accessors.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue {
    /// Member lookup that prefers an exact key and falls back to a case-insensitive match, since
    /// Azure spells the same field `alertTargetIDs` in one payload and `alertTargetIds` in another.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        if let exact = members[key] { return exact }
        // Compared in place: a lookup of an absent optional field (most of them, in most payloads)
        // would otherwise lower-case a copy of every member's key.
        return members.first { Self.equalIgnoringASCIICase($0.key, key) }?.value
    }

    /// `a.lowercased() == b.lowercased()` for the ASCII letters JSON keys are spelled in, without
    /// making either string.
    static func equalIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        var left = a.utf8.makeIterator()
        var right = b.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if x == y { continue }
                let lowerX = x >= 65 && x <= 90 ? x | 0x20 : x
                let lowerY = y >= 65 && y <= 90 ? y | 0x20 : y
                if lowerX != lowerY { return false }
            default: return false
            }
        }
    }

    /// The first present, non-null member among several spellings.
    public func first(_ keys: String...) -> JSONValue? {
        for key in keys {
            if let value = self[key], value != .null { return value }
        }
        return nil
    }

    public var isNull: Bool { self == .null }

    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// Arrays, and arrays that arrived as an escaped JSON string (Service Health `impactedServices`).
    public var arrayValue: [JSONValue]? {
        switch self {
        case .array(let items): return items
        case .string(let text): if case .array(let items)? = JSONValue.parse(text) { return items }
        default: break
        }
        return nil
    }

    /// Text of a scalar: strings as they are, numbers and booleans rendered.
    public var stringValue: String? {
        switch self {
        case .string(let text): return text
        case .number(let number):
            if number.rounded() == number, abs(number) < 1e15 { return String(Int64(number)) }
            return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        default: return nil
        }
    }

    /// Numbers, and numbers sent as strings (`"threshold": "25"`).
    public var doubleValue: Double? {
        switch self {
        case .number(let number): return number
        case .string(let text): return Double(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    /// Booleans, and booleans sent as `"True"`/`"false"` strings or 0/1.
    public var boolValue: Bool? {
        switch self {
        case .bool(let flag): return flag
        case .string(let text):
            switch text.lowercased() {
            case "true": return true
            case "false": return false
            default: return nil
            }
        case .number(let number): return number != 0
        default: return nil
        }
    }

    public var dateValue: Date? { stringValue.flatMap(Timestamp.parse) }

    public static func parse(_ text: String) -> JSONValue? {
        try? JSONParser.parse(Data(text.utf8))
    }

    /// Parses JSON text; the error says what is wrong and where.
    public static func decode(_ data: Data) throws -> JSONValue {
        try JSONParser.parse(data)
    }

    /// Compact JSON with keys sorted by their UTF-8 bytes: the same value always gives the same
    /// bytes (the event log hashes these). Written by hand: it is on every write path.
    public func canonicalData() -> Data {
        Data(canonicalBytes())
    }

    /// `canonicalData()` as a byte array, for callers that build on it without copying it again.
    public func canonicalBytes() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    /// Compact JSON in whatever key order the dictionaries hold: for state that is stored, not hashed.
    public func compactString() -> String {
        var out = [UInt8]()
        out.reserveCapacity(1024)
        write(into: &out, sortingKeys: false)
        return String(decoding: out, as: UTF8.self)
    }

    func write(into out: inout [UInt8], sortingKeys: Bool = true) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): out.append(contentsOf: Self.format(number).utf8)
        case .string(let text): Self.writeString(text, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out, sortingKeys: sortingKeys)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            if sortingKeys {
                // The members sorted whole, so that no value is looked up again by its key.
                let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                for (index, member) in sorted.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    Self.writeString(member.key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    member.value.write(into: &out)
                }
            } else {
                for (index, (key, value)) in members.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    Self.writeString(key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    value.write(into: &out, sortingKeys: false)
                }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Integers without a fraction; other finite numbers in Swift's shortest round-trip form;
    /// non-finite numbers (which JSON cannot carry) as null.
    public static func format(_ number: Double) -> String {
        guard number.isFinite else { return "null" }
        if number == number.rounded(), abs(number) < 9_007_199_254_740_992 {
            return String(Int64(number))
        }
        return "\(number)"
    }

    /// Appends `text` as a JSON string: runs that need no escaping are copied whole.
    public static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default:
                    out.append(contentsOf: "u00".utf8)
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0x0F))
                }
                runStart = index + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    public func canonicalString() -> String { String(decoding: canonicalData(), as: UTF8.self) }

    /// Any `Encodable` as a JSON value, dates written as Standby writes them (ISO-8601, UTC, ms).
    public static func encoding<T: Encodable>(_ value: T) -> JSONValue {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        guard let data = try? encoder.encode(value), let json = try? decode(data) else { return .null }
        return json
    }

    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }

    public static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
}
