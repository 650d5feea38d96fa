import HTTPTypes
import Hummingbird
import NIOCore
import StandbyCore
import StandbyPrimitives

/// A response whose body is a `JSONValue`, written by its canonical writer: keys sorted and
/// slashes unescaped, as the context's response encoder writes them. The webhook and report
/// receipts and every problem use it because Foundation's JSONEncoder costs more than the rest of
/// their handling.
struct JSONResponse: ResponseGenerator {
    var status: HTTPResponse.Status = .ok
    var headers: HTTPFields = [:]
    var contentType = "application/json; charset=utf-8"
    var body: JSONValue

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = contentType
        return Response(
            status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body.canonicalBytes())))
    }
}
