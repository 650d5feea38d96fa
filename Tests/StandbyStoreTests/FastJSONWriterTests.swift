import StandbyApp
import StandbyCore
import StandbyPrimitives
import Testing

@testable import StandbyStore

@Suite("Hand-written JSON of receipts")
struct FastJSONWriterTests {
    @Test("hub references and report receipts write what their Encodable conformance writes")
    func sameAsEncodable() {
        let hub = HubReference(deploymentId: "foundry \"prod\"/1", hubId: "east\u{1}us-ü")
        #expect(hub.jsonValue() == JSONValue.encoding(hub))
        let receipt = ReportReceipt(
            id: "r-1", hub: hub.hubId, source: "probe:\\chat", observedAt: "2026-11-28T10:00:00.000Z",
            status: "duplicate")
        #expect(receipt.jsonValue() == JSONValue.encoding(receipt))
    }
}
