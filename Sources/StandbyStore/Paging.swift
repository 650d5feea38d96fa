import Foundation
import GRDB

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
    func page<Item>(from rows: [(seq: Int64, item: Item)]) -> Page<Item> {
        let items = rows.prefix(limit)
        let next = rows.count > limit ? items.last.map { Self.encodeCursor($0.seq) } : nil
        return Page(items: items.map(\.item), next: next)
    }
}

/// The WHERE clause of a listing, built from whichever filters are set.
struct SQLFilter {
    private(set) var clauses: [String] = []
    private(set) var arguments = StatementArguments()

    /// Adds `clause` (with one `?`) when `value` is given.
    mutating func add(_ clause: String, _ value: (any DatabaseValueConvertible)?) {
        guard let value else { return }
        clauses.append(clause)
        arguments += [value]
    }

    mutating func add(_ clause: String) {
        clauses.append(clause)
    }

    /// `WHERE a AND b`, or nothing when no filter is set.
    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }

    mutating func add(_ clause: String, values: [any DatabaseValueConvertible]) {
        clauses.append(clause)
        arguments += StatementArguments(values)
    }
}

extension PageRequest {
    /// One page of `source` ordered by `seqColumn`, after the cursor, matching `filter`.
    func fetch<Item>(
        _ db: Database, select: String = "*", from source: String, filter: SQLFilter, ascending: Bool,
        seqColumn: String = "seq", _ map: (Row) throws -> Item
    ) throws -> Page<Item> {
        var filter = filter
        filter.add(ascending ? "\(seqColumn) > ?" : "\(seqColumn) < ?", after)
        let rows = try Row.fetchAll(
            db,
            sql:
                "SELECT \(select) FROM \(source) \(filter.whereClause) ORDER BY \(seqColumn) \(ascending ? "ASC" : "DESC") LIMIT ?",
            arguments: filter.arguments + [limit + 1])
        return page(from: try rows.map { (seq: $0["seq"], item: try map($0)) })
    }
}
