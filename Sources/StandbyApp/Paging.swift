import Foundation

/// One page of a listing, newest first, with an opaque cursor for the next page.
public struct Page<Item: Sendable & Encodable>: Sendable, Encodable {
    public var items: [Item]
    public var next: String?

    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}

/// Paging parameters as DESIGN §5 gives them: `limit` 1...1000 (default 100) and an opaque cursor.
public struct PageRequest: Sendable, Hashable {
    public static let defaultLimit = 100
    public static let maximumLimit = 1000

    public var limit: Int
    /// The sequence number the page continues from (exclusive), decoded from the cursor: below it
    /// for newest-first listings, above it for oldest-first ones.
    public var after: Int64?

    public init(limit: Int = PageRequest.defaultLimit, after: Int64? = nil) {
        self.limit = limit
        self.after = after
    }

    /// Cursors are base64url of the sequence number, so clients do not build them by hand.
    public static func encodeCursor(_ seq: Int64) -> String {
        Data("s\(seq)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decodeCursor(_ cursor: String) -> Int64? {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
            text.hasPrefix("s"), let seq = Int64(text.dropFirst()), seq > 0
        else { return nil }
        return seq
    }

    /// Builds the page from `limit + 1` fetched rows: the extra row only says that more exist.
    public func page<Item>(from rows: [(seq: Int64, item: Item)]) -> Page<Item> {
        let items = rows.prefix(limit)
        let next = rows.count > limit ? items.last.map { Self.encodeCursor($0.seq) } : nil
        return Page(items: items.map(\.item), next: next)
    }
}
