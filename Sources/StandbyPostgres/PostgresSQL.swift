import Foundation
import Logging
import NIOCore
import PostgresNIO
import StandbyApp

/// A row read by column name.
struct PGRow {
    let cells: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        cells = row.makeRandomAccess()
    }

    subscript<T: PostgresDecodable>(_ column: String) -> T {
        get throws { try cells[column].decode(T.self) }
    }
}

/// A statement built piece by piece (listings with optional filters), its values bound as
/// `$1`, `$2`... in the order they were added.
struct SQLStatement {
    private(set) var text: String
    private(set) var bindings = PostgresBindings()
    private var clauses: [String] = []

    init(_ text: String = "") {
        self.text = text
    }

    /// The placeholder for `value`, bound.
    mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    mutating func bind(_ value: (some PostgresDynamicTypeEncodable)?) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    /// Adds `clause` to the WHERE conditions with `value` bound where it says `?`, when `value` is given.
    mutating func filter(_ clause: String, _ value: (some PostgresDynamicTypeEncodable)?) {
        guard let value else { return }
        clauses.append(clause.replacingOccurrences(of: "?", with: bind(value)))
    }

    mutating func filter(_ clause: String) {
        clauses.append(clause)
    }

    mutating func append(_ more: String) {
        text += more
    }

    /// `WHERE a AND b`, or nothing when no filter is set.
    var whereClause: String { clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ") }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: bindings) }
}

extension PageRequest {
    /// One page of `source` ordered by `seqColumn`, after the cursor, matching the statement's
    /// filters (the statement holds the bound filter values; its text is ignored).
    func fetch<Item>(
        _ transaction: PostgresTransaction, select: String = "*", from source: String,
        filter: SQLStatement, ascending: Bool, seqColumn: String = "seq", _ map: (PGRow) throws -> Item
    ) throws -> Page<Item> {
        var statement = filter
        statement.filter(ascending ? "\(seqColumn) > ?" : "\(seqColumn) < ?", after.map { Int($0) })
        let limitPlaceholder = statement.bind(limit + 1)
        statement.append(
            "SELECT \(select) FROM \(source)\(statement.whereClause) ORDER BY \(seqColumn) "
                + "\(ascending ? "ASC" : "DESC") LIMIT \(limitPlaceholder)")
        let rows = try transaction.rows(statement.query)
        return page(from: try rows.map { (seq: Int64(try $0["seq"] as Int), item: try map($0)) })
    }
}
