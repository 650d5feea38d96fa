import Foundation
import Hummingbird
import StandbyApp
import StandbyCore
import StandbyPrimitives

/// A query value or form field percent-encoded: everything but RFC 3986's unreserved characters
/// (letters, digits, `-._~`), so that it cannot end the value or start another.
func queryEscaped(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
}

/// Reads query parameters, answering a precise 400 naming the parameter when one is wrong.
struct QueryReader {
    let parameters: Parameters

    init(_ request: Request) {
        parameters = request.uri.queryParameters
    }

    func string(_ name: String) -> String? {
        guard let value = parameters.get(name), !value.isEmpty else { return nil }
        return value
    }

    func date(_ name: String) throws -> Date? {
        try Self.date(string(name), field: name)
    }

    /// A timestamp query parameter, read leniently (fractions, offsets), or a 400 naming it.
    static func date(_ text: String?, field: String) throws -> Date? {
        guard let text, !text.isEmpty else { return nil }
        guard let date = Timestamp.parse(text) else {
            throw Problem.badRequest(
                "\(field) must be an ISO-8601 timestamp such as 2026-11-28T10:00:00Z", field: field)
        }
        return date
    }

    func choice<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws -> T?
    where T.RawValue == String {
        guard let text = string(name) else { return nil }
        guard let value = T(rawValue: text) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw Problem.badRequest("\(name) must be one of \(allowed)", field: name)
        }
        return value
    }

    func page() throws -> PageRequest {
        let limit = try string("limit").map { text -> Int in
            guard let limit = Int(text) else { throw Self.badLimit }
            return limit
        }
        return try Self.page(limit: limit, cursor: string("cursor"))
    }

    static let badLimit = Problem.badRequest(
        "limit must be a whole number from 1 to \(PageRequest.maximumLimit)", field: "limit")

    /// Paging parameters checked as DESIGN §5 gives them, or a 400 naming the one that is wrong.
    static func page(limit: Int?, cursor: String?) throws -> PageRequest {
        var page = PageRequest()
        if let limit {
            guard (1...PageRequest.maximumLimit).contains(limit) else { throw badLimit }
            page.limit = limit
        }
        if let cursor, !cursor.isEmpty {
            guard let after = PageRequest.decodeCursor(cursor) else {
                throw Problem.badRequest("cursor is not one this server returned as next", field: "cursor")
            }
            page.after = after
        }
        return page
    }
}
