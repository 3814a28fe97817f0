import FedEngine
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging

/// How a coordinator secures its listening socket.
public enum ServerSecurity: Sendable {
    /// Plain HTTP/2: for loopback experiments only.
    case insecure
    /// TLS with a PEM certificate chain and key; with `clientCA`, clients must present a
    /// certificate signed by that CA (mutual TLS).
    case tls(certificateChain: String, privateKey: String, clientCA: String?)
}

/// How a client secures its connection.
public enum ClientSecurity: Sendable {
    case insecure
    /// TLS, trusting the PEM CA `trustRoots` (the system's roots when nil) and verifying that the
    /// server's certificate names the host dialled; with a certificate and key, the client
    /// presents them (mutual TLS).
    case tls(trustRoots: String?, certificateChain: String?, privateKey: String?)
}

extension Coordinator {
    /// Serves the coordinator on `host:port` (port 0: any free port, reported to `onListening`),
    /// waits for `minimumClients` and runs the experiment's rounds; then ends every session and
    /// stops listening. At most `maximumStreams` sessions share one connection (a process of
    /// virtual clients opens one per client). HTTP/2 keepalive pings a connection idle for
    /// the heartbeat and closes it when a ping goes unanswered for as long.
    public func serve(
        host: String, port: Int, security: ServerSecurity, minimumClients: Int, timeout: Double = 600,
        maximumStreams: Int = 16_384,
        onListening: @escaping @Sendable (Int) -> Void = { _ in },
        onRound: @escaping @Sendable (RoundMetrics) -> Void = { _ in }
    ) async throws -> [RoundMetrics] {
        let transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity
        switch security {
        case .insecure: transportSecurity = .plaintext
        case .tls(let chain, let key, let clientCA):
            let certificates: [TLSConfig.CertificateSource] = [.file(path: chain, format: .pem)]
            let privateKey = TLSConfig.PrivateKeySource.file(path: key, format: .pem)
            if let clientCA {
                transportSecurity = .mTLS(certificateChain: certificates, privateKey: privateKey) {
                    $0.trustRoots = .certificates([.file(path: clientCA, format: .pem)])
                }
            } else {
                transportSecurity = .tls(certificateChain: certificates, privateKey: privateKey)
            }
        }
        let server = GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: host, port: port), transportSecurity: transportSecurity,
                config: .defaults {
                    $0.rpc.maxRequestPayloadSize = 2 * clients.maximumChunkBytes + 65_536
                    $0.http2.maxConcurrentStreams = maximumStreams
                    $0.http2.targetWindowSize = 8 << 20
                    let beat = Duration.milliseconds(Int64(1000 * clients.heartbeatSeconds))
                    $0.connection.keepalive = .init(
                        time: beat, timeout: beat,
                        clientBehavior: .init(minPingIntervalWithoutCalls: beat / 2, allowWithoutCalls: true))
                }),
            services: [service])
        return try await withThrowingTaskGroup(of: [RoundMetrics]?.self) { group in
            group.addTask {
                try await server.serve()
                return nil
            }
            guard let address = try await server.listeningAddress?.ipv4 else {
                throw WireError("the coordinator could not listen on \(host):\(port)")
            }
            onListening(address.port)
            let rows: [RoundMetrics]
            do {
                rows = try await run(minimumClients: minimumClients, timeout: timeout, onRound: onRound)
            } catch {
                clients.closeAll(stopping: true)
                server.beginGracefulShutdown()
                throw error
            }
            clients.closeAll(stopping: engine.round < config.rounds)
            server.beginGracefulShutdown()
            return rows
        }
    }
}

extension FederatedClient {
    /// Runs `clients` (each its own session) against the coordinator at `host:port`, at most
    /// `sessionsPerConnection` sessions on a connection, until the coordinator ends the run. A session that fails (the coordinator not
    /// up yet, restarted, or the connection lost) is opened again after an exponential backoff with
    /// jitter (0.1 s doubling to 5 s), for at most `patience` seconds without a successful session.
    public static func join(
        _ clients: [FederatedClient], host: String, port: Int, security: ClientSecurity, patience: Double = 120,
        sessionsPerConnection: Int = 200, logger: Logger = Logger(label: "fedswift.client")
    ) async throws {
        let transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity
        switch security {
        case .insecure: transportSecurity = .plaintext
        case .tls(let roots, let chain, let key):
            transportSecurity = .tls {
                if let roots { $0.trustRoots = .certificates([.file(path: roots, format: .pem)]) }
                if let chain, let key {
                    $0.certificateChain = [.file(path: chain, format: .pem)]
                    $0.privateKey = .file(path: key, format: .pem)
                }
            }
        }
        // At most `sessionsPerConnection` sessions share a connection: a connection that fails
        // takes fewer sessions with it, and no connection carries the frames of thousands.
        let groups = stride(from: 0, to: clients.count, by: max(1, sessionsPerConnection)).map {
            Array(clients[$0..<min($0 + max(1, sessionsPerConnection), clients.count)])
        }
        try await withThrowingDiscardingTaskGroup { connections in
            for group in groups {
                connections.addTask {
                    try await withGRPCClient(
                        transport: .http2NIOPosix(
                            target: .ipv4(address: host, port: port), transportSecurity: transportSecurity,
                            config: .defaults {
                                $0.http2.targetWindowSize = 8 << 20
                                // Pings a connection idle for 20 s; one unanswered for 20 s more is
                                // closed, and the sessions on it reconnect.
                                $0.connection.keepalive = .init(
                                    time: .seconds(20), timeout: .seconds(20), allowWithoutCalls: true)
                            },
                            serviceConfig: ServiceConfig()
                        )
                    ) { connection in
                        try await withThrowingDiscardingTaskGroup { sessions in
                            for client in group {
                                sessions.addTask {
                                    try await client.runWithRetries(connection, patience: patience, logger: logger)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Opens sessions until one ends normally (the run is over).
    func runWithRetries(
        _ connection: GRPCClient<some ClientTransport>, patience: Double, logger: Logger
    ) async throws {
        var delay = 0.1
        var lastSuccess = Date()
        var rng = SystemRandomNumberGenerator()
        while true {
            do {
                try await run(connection)
                return
            } catch let error as RPCError
                where error.code == .unauthenticated || error.code == .failedPrecondition
                || error.code == .invalidArgument
            {
                throw error  // retrying cannot help
            } catch {
                if joined { lastSuccess = Date() }
                joined = false
                guard Date().timeIntervalSince(lastSuccess) < patience else { throw error }
                logger.notice(
                    "session failed; reconnecting", metadata: ["client": "\(index)", "error": "\(error)"])
                try await Task.sleep(for: .seconds(delay * Double.random(in: 0.5...1.5, using: &rng)))
                delay = min(delay * 2, 5)
            }
        }
    }
}
