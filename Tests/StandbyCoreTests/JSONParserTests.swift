import Foundation
import StandbyCore
import StandbyPrimitives
import Testing

@Suite("JSON parsing and canonical form")
struct JSONParserTests {
    @Test("parses what Foundation parses, to the same values")
    func agreesWithFoundation() throws {
        let text =
            #"{"a":[1,-2.5,3e2,true,false,null,"x\"y\\z\n\u00e9\ud83d\ude00/"],"b":{"c":{}},"d":[],"e":"","f":0.000001}"#
        let value = try JSONValue.decode(Data(text.utf8))
        let reference = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(value == reference)
        #expect(value["a"]?.arrayValue?[6] == .string("x\"y\\z\né😀/"))
    }

    @Test(
        "refuses what is not JSON",
        arguments: [
            "", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "1e", "+1", "\"unterminated", "{\"a\" 1}", "[1 2]",
            "nul", "tru", "{\"a\":1}x", "\"\u{01}\"", "\"\\x\"", "\"\\ud800\"", "1e400", "-1e400", "NaN", "[Infinity]",
        ])
    func refuses(_ text: String) {
        #expect(throws: (any Error).self) { try JSONValue.decode(Data(text.utf8)) }
    }

    @Test("invalid UTF-8 and deep nesting are refused without crashing")
    func hostile() {
        #expect(throws: (any Error).self) { try JSONValue.decode(Data([0x22, 0xC3, 0x28, 0x22])) }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: (any Error).self) { try JSONValue.decode(Data(deep.utf8)) }
        // Stored documents stay far below the 512 levels where Foundation's coders give up, so
        // that whatever was stored can be served again.
        let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONValue.decode(Data(fine.utf8)) }
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: (any Error).self) { try JSONValue.decode(Data(tooDeep.utf8)) }
    }

    @Test("duplicate keys: the last one wins")
    func duplicates() throws {
        #expect(try JSONValue.decode(Data(#"{"a":1,"a":2}"#.utf8))["a"] == .number(2))
    }

    @Test("the canonical form sorts keys, is compact, and parses back to the same value")
    func canonical() throws {
        let value = try JSONValue.decode(
            Data(#"{ "b" : [1, 2.5, "é\n"], "a" : {"z": null, "y": true}, "É": 1e21 }"#.utf8))
        let canonical = value.canonicalString()
        #expect(canonical == #"{"a":{"y":true,"z":null},"b":[1,2.5,"é\n"],"É":1e+21}"#)
        #expect(try JSONValue.decode(Data(canonical.utf8)) == value)
    }

    @Test("members are found by their exact key first, then ignoring the case of ASCII letters")
    func caseInsensitiveLookup() throws {
        let value = try JSONValue.decode(Data(#"{"alertTargetIDs":[1],"Severity":"Sev3","sév":1,"id":"x"}"#.utf8))
        #expect(value["alertTargetIds"]?.arrayValue?.count == 1)
        #expect(value["ALERTTARGETIDS"] != nil)
        #expect(value["severity"]?.stringValue == "Sev3")
        #expect(value["SÉV"] == nil)  // only ASCII letters fold
        #expect(value["sév"] != nil)
        #expect(value["i"] == nil && value["idx"] == nil && value["missing"] == nil)
    }
}
