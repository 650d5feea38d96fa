import HTTPTypes
import NIOCore
import NIOHTTPTypes
import StandbyPrimitives

/// Guards every connection, below every route (generated or hand-written), against clients that
/// hold sockets open or send more than Standby will read:
///
/// - a `Content-Length` above `server.maxBodyBytes` is answered 413 at once, before a byte of the
///   body is read, and the connection is closed;
/// - a body that grows past the limit without declaring it (chunked) ends the request with
///   `NIOTooManyBytesError` (which the routes answer 413), and the connection is closed;
/// - a request must arrive whole within `server.bodyTimeout` of its head, however slowly it
///   trickles: past that it is answered 408 (or cut off, if its response has begun) and closed;
/// - a response that says `Connection: close` (401 and 413 do) closes the connection once it is
///   written when the request's body has not arrived whole, instead of draining whatever the
///   client is still sending; a request that arrived whole keeps its connection.
final class RequestGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let maxBodyBytes: Int
    let bodyTimeout: TimeAmount

    private var bodyBytes = 0
    private var deadline: Scheduled<Void>?
    /// Set once this handler refused the connection's request: nothing more is read from it.
    private var refused = false
    private var responseStarted = false
    private var requestComplete = false
    private var closeAfterResponse = false

    init(maxBodyBytes: Int, bodyTimeout: TimeAmount) {
        self.maxBodyBytes = maxBodyBytes
        self.bodyTimeout = bodyTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            bodyBytes = 0
            requestComplete = false
            if let declared = head.headerFields[.contentLength].flatMap(Int.init), declared > maxBodyBytes {
                refuse(
                    context, status: .contentTooLarge, slug: "content-too-large",
                    detail: "the declared body of \(declared) bytes exceeds server.maxBodyBytes (\(maxBodyBytes))")
                return
            }
            startDeadline(context)
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > maxBodyBytes {
                cancelDeadline()
                refused = true
                closeAfterResponse = true
                // The route already has the head and may be reading: end its body with the error
                // every route answers 413, or close at once if its response is already under way.
                if responseStarted {
                    context.close(promise: nil)
                } else {
                    context.fireErrorCaught(NIOTooManyBytesError(maxBytes: maxBodyBytes))
                }
                return
            }
        case .end:
            requestComplete = true
            cancelDeadline()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response):
            responseStarted = true
            guard response.headerFields[.connection]?.lowercased() == "close" else {
                context.write(data, promise: promise)
                return
            }
            // A route asks to close rather than drain. With the request already read whole there
            // is nothing to drain: the connection stays open for the client's next request.
            if requestComplete, !closeAfterResponse {
                response.headerFields[.connection] = nil
                context.write(wrapOutboundOut(.head(response)), promise: promise)
                return
            }
            closeAfterResponse = true
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            responseStarted = false
            guard closeAfterResponse else {
                context.write(data, promise: promise)
                return
            }
            closeOnceWritten(context, data, promise: promise)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        context.fireChannelInactive()
    }

    private func startDeadline(_ context: ChannelHandlerContext) {
        cancelDeadline()
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: bodyTimeout) {
            let (handler, context) = bound.value
            handler.deadline = nil
            if handler.responseStarted {
                handler.refused = true
                context.close(promise: nil)
            } else {
                handler.refuse(
                    context, status: .requestTimeout, slug: "request-timeout",
                    detail: "the request did not arrive whole within server.bodyTimeout")
            }
        }
    }

    private func cancelDeadline() {
        deadline?.cancel()
        deadline = nil
    }

    /// Answers `status` with a problem document and closes the connection once it is written.
    private func refuse(_ context: ChannelHandlerContext, status: HTTPResponse.Status, slug: String, detail: String) {
        cancelDeadline()
        refused = true
        // The same document `Problem` renders, written here because no route (and no Request) is involved.
        let body = ByteBuffer(
            bytes: JSONValue.object([
                "type": .string("https://standby.dev/problems/\(slug)"), "title": .string(status.reasonPhrase),
                "status": .number(Double(status.code)), "detail": .string(detail),
            ]).canonicalBytes())
        let head = HTTPResponse(
            status: status,
            headerFields: [
                .contentType: "application/problem+json", .contentLength: String(body.readableBytes),
                .connection: "close",
            ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        closeOnceWritten(context, wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func closeOnceWritten(_ context: ChannelHandlerContext, _ data: NIOAny, promise: EventLoopPromise<Void>?) {
        let written = promise ?? context.eventLoop.makePromise()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
        context.writeAndFlush(data, promise: written)
    }
}
