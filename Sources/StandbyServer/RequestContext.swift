import Foundation
import Hummingbird
import Logging
import NIOCore

/// The one request context of Standby: the caller's address, and who they proved to be.
public struct StandbyRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by `APIAuthMiddleware`; the token's name is the actor recorded in history.
    public var identity: APIToken?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    public var actor: String { identity?.name ?? "anonymous" }

    /// Sorted keys and ISO-8601 dates: responses are stable, diffable and easy to read.
    public var responseEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
