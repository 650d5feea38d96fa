import Foundation
import Hummingbird
import NIOCore
import StandbyApp
import StandbyCore
import StandbyPrimitives
import StandbyStore

/// The streamed `GET /v1/events/export` (listing events is served by the generated API).
struct EventsController {
    static let exportBatch = 2000

    let history: any HistoryStore

    var endpoints: RouteCollection<StandbyRequestContext> {
        let routes = RouteCollection(context: StandbyRequestContext.self)
        routes.get("export", use: export)
        return routes
    }

    static func query(_ request: Request) throws -> EventQuery {
        let reader = QueryReader(request)
        var query = EventQuery()
        query.types = reader.string("type").map { $0.split(separator: ",").map(String.init) } ?? []
        query.deployment = reader.string("deployment")
        query.hub = reader.string("hub")
        query.since = try reader.date("since")
        query.until = try reader.date("until")
        query.page = try reader.page()
        return query
    }

    /// Streams the history in batches read one at a time, so memory stays flat for any length.
    @Sendable func export(_ request: Request, context: StandbyRequestContext) async throws -> Response {
        let query = try Self.query(request)
        let format = try QueryReader(request).choice("format", as: ExportFormat.self) ?? .ndjson
        let anchor = query.isUnfiltered ? try await history.latestAnchor() : nil
        let history = self.history
        let body = ResponseBody { writer in
            var buffer = ByteBuffer()
            switch format {
            case .ndjson: if let anchor { buffer.writeString(EventExport.ndjsonLine(anchor)) }
            case .csv: buffer.writeString(EventExport.csvHeader)
            }
            var after = query.page.after ?? 0
            while true {
                let events = try await history.batch(query, afterSeq: after, batchSize: Self.exportBatch)
                guard let last = events.last else { break }
                for event in events {
                    buffer.writeString(format == .ndjson ? EventExport.ndjsonLine(event) : EventExport.csvLine(event))
                }
                try await writer.write(buffer)
                buffer.clear()
                after = last.seq
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
            try await writer.finish(nil)
        }
        let contentType = format == .ndjson ? "application/x-ndjson" : "text/csv; charset=utf-8"
        return Response(
            status: .ok,
            headers: [
                .contentType: contentType,
                .contentDisposition: "attachment; filename=\"standby-events.\(format.rawValue)\"",
            ],
            body: body)
    }
}

extension GeneratedAPI {
    func listEvents(_ input: Operations.listEvents.Input) async throws -> Operations.listEvents.Output {
        var query = EventQuery()
        query.types = input.query._type.map { $0.split(separator: ",").map(String.init) } ?? []
        query.deployment = input.query.deployment
        query.hub = input.query.hub
        query.since = try QueryReader.date(input.query.since, field: "since")
        query.until = try QueryReader.date(input.query.until, field: "until")
        query.page = try QueryReader.page(limit: input.query.limit, cursor: input.query.cursor)
        let page = try await history.list(query)
        return .ok(.init(body: .json(.init(items: try page.items.map(Components.Schemas.Event.init), next: page.next))))
    }
}
