import Crypto
import FedCore
import FedEngine
import Foundation
import GRPCCore
import Logging

/// The coordinator's side of the `Session` stream: checks the Join, registers the session with
/// ``NetworkClients``, writes what the pool queues for the client, and hands the client's chunks
/// to the pool.
public struct CoordinatorService: Fedswift_V1_Coordinator.SimpleServiceProtocol {
    public let clients: NetworkClients
    /// The SHA-256 (lowercase hex) of each client's token, by client index (nil: any client index is
    /// accepted without a token). The tokens themselves are never stored or logged.
    public let tokens: [Int: String]?
    /// Names the run in every Welcome.
    public let runID: String
    let fingerprint: String

    public init(clients: NetworkClients, tokens: [Int: String]? = nil, runID: String) {
        self.clients = clients
        self.tokens = tokens
        self.runID = runID
        fingerprint = clients.config.fingerprint
    }

    public func session(
        request: RPCAsyncSequence<Fedswift_V1_ClientMessage, any Error>,
        response: RPCWriter<Fedswift_V1_CoordinatorMessage>,
        context: ServerContext
    ) async throws {
        let (outbound, continuation) = AsyncStream.makeStream(of: Fedswift_V1_CoordinatorMessage.self)
        // Reading and writing run side by side; when either ends (the client closed its stream,
        // went silent, or the coordinator ended the session), so does the session.
        try await withThrowingTaskGroup(of: Void.self) { group in
            let handle = SessionHandle()
            group.addTask { try await self.read(request, continuation, handle) }
            group.addTask { try await self.watch(handle) }
            group.addTask {
                for await message in outbound { try await response.write(message) }
                if clients.stopping {
                    throw RPCError(code: .unavailable, message: "the coordinator is stopping; reconnect to resume")
                }
            }
            defer {
                continuation.finish()
                group.cancelAll()
            }
            try await group.next()
        }
    }

    /// Checks the Join, registers the session, and hands every later message to the pool; a
    /// session silent for twice the heartbeat is ended with UNAVAILABLE.
    private func read(
        _ request: RPCAsyncSequence<Fedswift_V1_ClientMessage, any Error>,
        _ continuation: AsyncStream<Fedswift_V1_CoordinatorMessage>.Continuation, _ handle: SessionHandle
    ) async throws {
        var messages = request.makeAsyncIterator()
        guard let first = try await messages.next(), case .join(let join)? = first.kind else {
            clients.metrics.refusedJoin(code: "invalid_argument")
            clients.logger.warning("session refused: it did not start with a Join")
            throw RPCError(code: .invalidArgument, message: "a session must start with a Join")
        }
        let client: Int
        do {
            client = try check(join)
        } catch let error as RPCError {
            clients.metrics.refusedJoin(code: "\(error.code)")
            clients.logger.warning(
                "join refused",
                metadata: ["client": "\(join.clientIndex)", "code": "\(error.code)", "reason": "\(error.message)"])
            throw error
        }
        var welcome = Fedswift_V1_Welcome()
        welcome.runID = runID
        welcome.clientIndex = UInt32(client)
        welcome.heartbeatSeconds = UInt32(clients.heartbeatSeconds)
        welcome.maxChunkBytes = UInt64(clients.maximumChunkBytes)
        var hello = Fedswift_V1_CoordinatorMessage()
        hello.welcome = welcome
        continuation.yield(hello)
        let id = clients.register(
            client: client, samples: Int(clamping: join.capabilities.sampleCount), outbound: continuation)
        handle.set(client: client, id: id)
        defer { clients.unregister(client: client, id: id) }
        clients.logger.debug(
            "client joined", metadata: ["client": "\(client)", "device": "\(join.capabilities.device)"])
        do {
            while let message = try await messages.next() {
                switch message.kind {
                case .update(let chunk): try clients.receive(chunk, from: client)
                case .heartbeat, nil: clients.heard(client: client, id: id)
                case .join: throw WireError("a session joins once")
                }
            }
        } catch let error as WireError {
            clients.metrics.endedSession(cause: "protocol")
            clients.logger.warning(
                "session ended: the client broke the wire contract",
                metadata: ["client": "\(client)", "reason": "\(error.message)"])
            throw RPCError(code: .invalidArgument, message: error.message)
        } catch is CancellationError {
            throw CancellationError()  // the session ended from the coordinator's side
        } catch {
            clients.metrics.endedSession(cause: "stream_error")
            clients.logger.notice(
                "session ended: its stream failed", metadata: ["client": "\(client)", "error": "\(error)"])
            throw error
        }
    }

    /// Returns when the session is gone (replaced, or the pool closed it); throws UNAVAILABLE once
    /// it has been silent for twice the heartbeat, or has not joined within that time.
    private func watch(_ handle: SessionHandle) async throws {
        let limit = 2 * clients.heartbeatSeconds
        let opened = ContinuousClock.now
        while true {
            let silent: Double
            if let (client, id) = handle.session {
                guard let s = clients.silence(client: client, id: id) else { return }
                silent = s
                if silent > limit {
                    clients.metrics.endedSession(cause: "silent")
                    clients.logger.warning(
                        "session ended: no message for twice the heartbeat",
                        metadata: ["client": "\(client)", "silent_seconds": "\(Int(silent))"])
                    throw RPCError(code: .unavailable, message: "no message for \(Int(silent)) s")
                }
            } else {
                silent = (ContinuousClock.now - opened).seconds
                if silent > limit {
                    clients.metrics.endedSession(cause: "silent")
                    throw RPCError(code: .unavailable, message: "no Join within \(Int(limit)) s")
                }
            }
            try await Task.sleep(for: .seconds(min(limit - silent, clients.heartbeatSeconds / 2) + 0.01))
        }
    }

    /// The client index of a valid Join.
    func check(_ join: Fedswift_V1_Join) throws -> Int {
        guard join.protocolVersion == Wire.protocolVersion else {
            throw RPCError(
                code: .failedPrecondition,
                message: "protocol version \(join.protocolVersion); this coordinator speaks \(Wire.protocolVersion)")
        }
        let client = Int(join.clientIndex)
        guard client < clients.config.partition.clients else {
            throw RPCError(
                code: .invalidArgument,
                message: "client index \(client) is outside 0..<\(clients.config.partition.clients)")
        }
        if let tokens {
            guard let expected = tokens[client], Self.sameDigest(Self.digest(join.token), expected) else {
                throw RPCError(code: .unauthenticated, message: "unknown client or wrong token")
            }
        }
        guard join.capabilities.experimentFingerprint == fingerprint else {
            throw RPCError(code: .failedPrecondition, message: "the client runs another experiment or other settings")
        }
        guard join.capabilities.parameterCount == UInt64(clients.parameterCount) else {
            throw RPCError(
                code: .failedPrecondition,
                message:
                    "the client's model has \(join.capabilities.parameterCount) parameters, the run's \(clients.parameterCount)"
            )
        }
        return client
    }

    /// The SHA-256 of `token` as lowercase hex, the form token files hold (`printf %s TOKEN | sha256sum`).
    public static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Compares two digests in time independent of where they differ.
    static func sameDigest(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

/// The session a stream registered, once its Join was accepted.
final class SessionHandle: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (client: Int, id: UInt64)?

    func set(client: Int, id: UInt64) { lock.withLock { value = (client, id) } }
    var session: (client: Int, id: UInt64)? { lock.withLock { value } }
}
