import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain HTTP/1.1 endpoint that answers `GET /metrics` with a coordinator's metrics in
/// Prometheus' text format (anything else: 404). Each response closes its connection.
public final class MetricsServer: Sendable {
    let channel: any Channel
    /// The port it listens on (the one asked for, or the one the system chose for port 0).
    public let port: Int

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    /// Starts listening on `host:port` (port 0: any free port).
    public static func start(host: String, port: Int, metrics: CoordinatorMetrics) async throws -> MetricsServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(metrics: metrics))
                }
            }
            .bind(host: host, port: port).get()
        guard let bound = channel.localAddress?.port else {
            throw WireError("the metrics endpoint could not listen on \(host):\(port)")
        }
        return MetricsServer(channel: channel, port: bound)
    }

    /// Stops listening.
    public func close() async {
        try? await channel.close()
    }
}

/// Answers one request per connection.
private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: CoordinatorMetrics
    private var head: HTTPRequestHead?

    init(metrics: CoordinatorMetrics) { self.metrics = metrics }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            let found = head?.method == .GET && head?.uri.split(separator: "?").first == "/metrics"
            let body = found ? metrics.text() : "not found: the metrics are at /metrics\n"
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            let status: HTTPResponseStatus = found ? .ok : .notFound
            let version = head?.version ?? .http1_1
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))),
                promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            head = nil
        }
    }
}
