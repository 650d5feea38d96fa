import Foundation
import GRDB
import StandbyApp

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
