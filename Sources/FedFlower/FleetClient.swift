import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SwiftProtobuf

/// Flower's Fleet API over HTTP (flwr 1.41): `POST /v1/fleet/<rpc>` with a protobuf request body
/// and a protobuf response, every call signed by the node's identity.
///
/// An HTTP error becomes a ``FlowerError`` `.http` carrying the status and the SuperLink's
/// `detail`; a connection that cannot be made or breaks, `.transport`.
public final class FleetClient: Sendable {
    /// How the node reaches the SuperLink.
    public enum Security: Sendable {
        /// Plain HTTP (a SuperLink started with `--insecure`).
        case insecure
        /// HTTPS, trusting the system's roots or the PEM certificates in a file.
        case tls(rootCertificates: String?)
    }

    public let baseURL: String
    let identity: NodeIdentity
    let http: HTTPClient
    /// Largest response body read (a pulled object is at most a 5 MiB chunk and its header).
    static let maximumResponseBytes = 64 << 20

    /// A client of the SuperLink at `address` (`HOST:PORT`).
    /// - Throws: ``FlowerError`` `.badKey` if the root certificates cannot be read.
    public init(address: String, security: Security, identity: NodeIdentity) throws {
        var tls: TLSConfiguration?
        switch security {
        case .insecure:
            baseURL = "http://\(address)"
        case .tls(let roots):
            baseURL = "https://\(address)"
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let roots {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(roots))
                } catch {
                    throw FlowerError(.badKey, "cannot read the root certificates '\(roots)'", cause: error)
                }
            }
            tls = configuration
        }
        self.identity = identity
        http = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(
                tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(120))))
    }

    /// Closes the connections.
    public func shutdown() async {
        try? await http.shutdown()
    }

    /// Calls `rpc` (the path's last part, e.g. `pull-messages`) with `request`.
    public func call<Response: SwiftProtobuf.Message>(
        _ rpc: String, _ request: some SwiftProtobuf.Message, timeout: Double = 60,
        as _: Response.Type = Response.self
    ) async throws -> Response {
        let body: [UInt8] = try request.serializedBytes()
        var http = HTTPClientRequest(url: "\(baseURL)/v1/fleet/\(rpc)")
        http.method = .POST
        http.headers.add(name: "content-type", value: "application/protobuf")
        http.headers.add(name: "accept", value: "application/protobuf")
        for (name, value) in try identity.headers() { http.headers.add(name: name, value: value) }
        http.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await self.http.execute(http, timeout: .milliseconds(Int64(timeout * 1000)))
            bytes = try await response.body.collect(upTo: Self.maximumResponseBytes)
        } catch let error as FlowerError {
            throw error
        } catch {
            throw FlowerError(.transport, "POST /v1/fleet/\(rpc) to \(baseURL) failed", cause: error)
        }
        let data = Array(bytes.readableBytesView)
        guard response.status == .ok else {
            throw FlowerError(
                .http,
                "POST /v1/fleet/\(rpc): HTTP \(response.status.code)\(Self.detail(data).map { ": \($0)" } ?? "")",
                status: Int(response.status.code))
        }
        do {
            return try Response(serializedBytes: data)
        } catch {
            throw FlowerError(
                .badResponse, "POST /v1/fleet/\(rpc) answered with a body that is not its protobuf", cause: error)
        }
    }

    /// The message of a SuperLink's JSON error body (`detail`, or FastAPI's `{"detail": …}`).
    static func detail(_ body: [UInt8]) -> String? {
        guard let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            let text = String(decoding: body.prefix(300), as: UTF8.self)
            return text.isEmpty ? nil : text
        }
        var parts: [String] = []
        if let code = json["code"] { parts.append("[code \(code)]") }
        if let detail = json["detail"] as? String { parts.append(detail) }
        if let detail = json["public_details"] as? String, !detail.isEmpty { parts.append(detail) }
        return parts.isEmpty ? String(decoding: body.prefix(300), as: UTF8.self) : parts.joined(separator: " ")
    }
}
