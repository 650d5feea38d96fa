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

    /// A number a prepared statement returns as TEXT (see `SQLStatement`).
    func number<T: LosslessStringConvertible>(_ column: String) throws -> T {
        let text = try self[column] as String? ?? "NULL"
        guard let value = T(text) else { throw DamagedRow(column: column, value: text) }
        return value
    }
}

/// A statement to run on a connection: parsed and planned by the server each time it runs, or
/// prepared (named, parsed once per connection, its plan kept by the server's session).
enum PostgresStatement {
    case once(PostgresQuery)
    case prepared(sql: String, values: [PostgresData])

    /// The statement as one run once: parsed and planned where it runs.
    var unprepared: PostgresQuery {
        switch self {
        case .once(let query):
            return query
        case .prepared(let sql, let values):
            var bindings = PostgresBindings(capacity: values.count)
            for value in values { bindings.append(value) }
            return PostgresQuery(unsafeSQL: sql, binds: bindings)
        }
    }
}

/// A statement built piece by piece (listings with optional filters), its values bound as
/// `$1`, `$2`... in the order they were added.
///
/// A `prepared` one is for the multi-row writes every batch sends, whose text does not change
/// with their rows (one array per column): the server parses and plans it once per connection
/// instead of on every batch (about 0.7 ms of the server's time per batch, in its log). Its
/// placeholders carry their types (`$1::TEXT[]`), since a prepared statement is parsed without
/// them, and every column it returns must be TEXT (cast, `seq::TEXT`; read back with
/// `PGRow.number`): postgres-nio reads the rows of its prepared statements as text while the
/// server sends them in binary, which is the same bytes only for text.
struct SQLStatement {
    private(set) var text: String
    private(set) var bindings = PostgresBindings()
    /// A prepared statement's values (`bindings` stays empty).
    private var values: [PostgresData] = []
    let isPrepared: Bool
    private var clauses: [String] = []

    init(_ text: String = "", prepared: Bool = false) {
        self.text = text
        isPrepared = prepared
    }

    /// The placeholder for `value`, bound.
    mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        guard isPrepared else {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        var buffer = ByteBuffer()
        value.encode(into: &buffer, context: PostgresEncodingContext.default)
        values.append(PostgresData(type: value.psqlType, formatCode: value.psqlFormat, value: buffer))
        guard let type = value.psqlType.knownSQLName else { return "$\(values.count)" }
        return "$\(values.count)::\(type)"
    }

    mutating func bind(_ value: (some PostgresDynamicTypeEncodable)?) -> String {
        if let value { return bind(value) }
        guard isPrepared else {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        // Typed by where it stands, as the server infers an untyped placeholder.
        values.append(.null)
        return "$\(values.count)"
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

    var query: PostgresQuery {
        precondition(!isPrepared, "a prepared statement runs as one (`statement`)")
        return PostgresQuery(unsafeSQL: text, binds: bindings)
    }

    var statement: PostgresStatement {
        isPrepared ? .prepared(sql: text, values: values) : .once(query)
    }
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

/// The rows of bound arrays, one array per column, as `SELECT unnest($1) AS a, unnest($2) AS b`:
/// set-returning functions in the select list run side by side and stream their rows (each array
/// here has one element per row). `FROM unnest($1, $2)` would first copy every row into a tuple
/// store, and the server took that store's memory from the heap and gave it back on every
/// statement: a page fault and a `brk` each time, about a tenth of the server's CPU per delivery
/// with three instances.
func unnestedRows(_ columns: KeyValuePairs<String, String>) -> String {
    "SELECT " + columns.map { "unnest(\($0.value)) AS \($0.key)" }.joined(separator: ", ")
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

/// What a statement sent without waiting answered: its rows and, for a statement run once, its
/// command tag (`COMMIT`, or `ROLLBACK` from a transaction that had failed).
struct StatementAnswer: Sendable {
    var rows: [PostgresRow]
    var command: String?
}

extension StatementAnswer {
    init(_ result: PostgresQueryResult) {
        self.init(rows: result.rows, command: result.metadata.command)
    }
}

/// A connection's prepared statements, by text: each is parsed once on its connection (one
/// round trip, the first time), and the server's session keeps it and its plan until the
/// connection closes. Used only by the transaction that holds the connection.
final class PreparedStatements: @unchecked Sendable {
    /// Past this many texts a statement runs unprepared: the texts are a few fixed shapes, and
    /// the server keeps each one for the connection's life.
    static let limit = 32
    private var byText: [String: PreparedQuery] = [:]

    /// `sql` prepared on `connection` (waiting for the server with `wait`), or nil when this
    /// connection holds as many as it may.
    func prepared(
        _ sql: String, on connection: PostgresConnection,
        wait: (EventLoopFuture<PreparedQuery>) throws -> PreparedQuery
    ) throws -> PreparedQuery? {
        if let known = byText[sql] { return known }
        guard byText.count < Self.limit else { return nil }
        let prepared = try wait(connection.prepare(query: sql))
        byText[sql] = prepared
        return prepared
    }

    /// The server no longer has the statement, or its plan no longer fits the schema: it is
    /// prepared again next time. (Other failures, a refused row, leave it as good as it was, and
    /// each new preparation is a statement the session keeps.)
    func forget(_ sql: String) {
        byText[sql] = nil
    }
}
