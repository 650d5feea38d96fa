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

    /// Puts the text written so far between `prefix` and `suffix` (a subquery), its values kept.
    mutating func wrap(prefix: String, suffix: String) {
        text = prefix + text + suffix
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

/// A `text[]` whose elements may be NULL, bound as one value. Multi-row writes bind one of these
/// per column and read the rows back with `unnest`, so that their statement text is the same for
/// any number of rows: the server parses and plans a short statement instead of one with
/// thousands of placeholders. (postgres-nio's own arrays take no optional elements.)
struct TextColumn: PostgresNonThrowingEncodable, PostgresDynamicTypeEncodable {
    var values: [String?]

    init(_ values: [String?]) {
        self.values = values
    }

    static var psqlType: PostgresDataType { .textArray }
    static var psqlFormat: PostgresFormat { .binary }

    /// PostgreSQL's binary array: dimensions, a has-NULLs flag, the element type, then per
    /// dimension its length and lower bound, then each element as a length (-1 for NULL) and bytes.
    func encode<JSONEncoder: PostgresJSONEncoder>(
        into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>
    ) {
        buffer.writeInteger(Int32(1))
        buffer.writeInteger(Int32(values.contains(nil) ? 1 : 0))
        buffer.writeInteger(PostgresDataType.text.rawValue)
        buffer.writeInteger(Int32(values.count))
        buffer.writeInteger(Int32(1))
        for value in values {
            guard let value else {
                buffer.writeInteger(Int32(-1))
                continue
            }
            buffer.writeInteger(Int32(value.utf8.count))
            buffer.writeString(value)
        }
    }
}
