import FedCore
import FedTensor
import Foundation
import Logging

/// A native Flower SuperNode: it joins a stock SuperLink over the Fleet API, heartbeats, pulls
/// the messages addressed to it with every object verified, answers them with its
/// ``NativeClientApp`` and pushes the replies.
///
/// The node registers its key (unless the operator registered it: `--enable-supernode-auth`)
/// and activates; when the SuperLink is away it retries with backoff, and when it comes back
/// without knowing the node (restarted with in-memory state) the node registers and activates
/// again. Stopping deactivates it (and unregisters a key it registered itself).
public final class FlowerNode: @unchecked Sendable {
    public struct Options: Sendable {
        /// Try to register the key before activating (a SuperLink with `--enable-supernode-auth`
        /// refuses, and the node then only activates the key the operator registered).
        public var register = true
        /// Seconds between heartbeats the node promises at activation (Flower: 10 to 1800).
        public var heartbeatInterval = 30.0
        /// Seconds between polls for messages while idle.
        public var pollInterval = 1.0
        /// Seconds to keep trying while the SuperLink cannot be reached or refuses to activate the
        /// node (then the node gives up).
        public var patience = 120.0
        /// Seconds to wait for an object that is announced but not yet available.
        public var objectWait = 60.0
        /// Threads the local training uses.
        public var threads = 1

        public init() {}
    }

    public let client: FleetClient
    public let identity: NodeIdentity
    public let app: NativeClientApp
    public let options: Options
    let logger: Logger
    private let lock = NSLock()
    private var _nodeID: UInt64?
    /// Whether this node registered its key (then it unregisters when it leaves).
    private var registeredHere = false
    /// Messages answered so far.
    public private(set) var answered = 0

    public init(client: FleetClient, identity: NodeIdentity, app: NativeClientApp, options: Options, logger: Logger) {
        self.client = client
        self.identity = identity
        self.app = app
        self.options = options
        self.logger = logger
    }

    /// The node id the SuperLink gave at the last activation.
    public var nodeID: UInt64? { lock.withLock { _nodeID } }

    /// Serves until `shouldStop` returns true (checked at least every poll interval), then
    /// deactivates the node and closes the client's connections.
    /// - Throws: ``FlowerError`` when the SuperLink stays unreachable past the patience, or refuses
    ///   the node for good (a failed registration or activation).
    public func run(shouldStop: @escaping @Sendable () -> Bool) async throws {
        do {
            try await serveUntilStopped(shouldStop: shouldStop)
        } catch {
            await leave()
            await client.shutdown()
            throw error
        }
        await leave()
        await client.shutdown()
    }

    func serveUntilStopped(shouldStop: @escaping @Sendable () -> Bool) async throws {
        while !shouldStop() {
            let id = try await connect(shouldStop: shouldStop)
            guard let id else { break }
            let heartbeat = Task { await self.heartbeats(node: id, shouldStop: shouldStop) }
            defer { heartbeat.cancel() }
            do {
                try await serve(node: id, shouldStop: shouldStop)
            } catch let error as FlowerError where Self.isLost(error) {
                logger.warning("lost the SuperLink, reconnecting", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Whether an error means the connection (or the SuperLink's memory of this node) is gone,
    /// so that connecting again may help.
    static func isLost(_ error: FlowerError) -> Bool {
        switch error.code {
        case .transport: return true
        case .http: return error.status.map { $0 == 401 || $0 >= 500 } ?? false
        default: return false
        }
    }

    /// Registers (if asked to) and activates; retries while the SuperLink is away. Nil if asked
    /// to stop first.
    func connect(shouldStop: @Sendable () -> Bool) async throws -> UInt64? {
        let started = Date()
        var delay = 0.5
        var deactivated = false
        while !shouldStop() {
            do {
                if options.register {
                    var request = Flwr_Proto_RegisterNodeFleetRequest()
                    request.publicKey = Data(identity.publicKeyBytes)
                    do {
                        let r: Flwr_Proto_RegisterNodeFleetResponse = try await client.call("register-node", request)
                        lock.withLock { registeredHere = true }
                        logger.info("registered", metadata: ["node": "\(r.nodeID)"])
                    } catch let error as FlowerError where error.code == .http && error.status == 412 {
                        // The key is known already (a reconnect), or only the operator registers keys.
                        logger.debug("not registered", metadata: ["reason": "\(error.message)"])
                    }
                }
                var activate = Flwr_Proto_ActivateNodeRequest()
                activate.publicKey = Data(identity.publicKeyBytes)
                activate.heartbeatInterval = options.heartbeatInterval
                let r: Flwr_Proto_ActivateNodeResponse
                do {
                    r = try await client.call("activate-node", activate)
                } catch let error as FlowerError where error.code == .http && error.status == 412 {
                    // A SuperLink refuses to activate a key it does not know, and one it still counts
                    // online: after a lost connection (deactivate the old session first), or after a
                    // crash of this node (online for twice the heartbeat interval; wait it out).
                    if let previous = nodeID, !deactivated {
                        deactivated = true
                        var deactivate = Flwr_Proto_DeactivateNodeRequest()
                        deactivate.nodeID = previous
                        let _: Flwr_Proto_DeactivateNodeResponse? = try? await client.call(
                            "deactivate-node", deactivate)
                        continue
                    }
                    guard Date().timeIntervalSince(started) < options.patience else {
                        throw FlowerError(
                            .rejected,
                            "the SuperLink refused to activate this node for \(Int(options.patience)) s (\(error.message)); "
                                + "a SuperLink with --enable-supernode-auth only knows keys registered with "
                                + "`flwr supernode register KEY.pub`",
                            status: 412)
                    }
                    logger.warning(
                        "activation refused, retrying (the key may be unregistered, or still online from an earlier start)",
                        metadata: ["error": "\(error.message)"])
                    try await pause(5, shouldStop: shouldStop)
                    continue
                }
                lock.withLock { _nodeID = r.nodeID }
                logger.info("activated", metadata: ["node": "\(r.nodeID)", "superlink": "\(client.baseURL)"])
                return r.nodeID
            } catch let error as FlowerError where error.code == .transport || (error.status ?? 0) >= 500 {
                guard Date().timeIntervalSince(started) < options.patience else {
                    throw FlowerError(
                        .transport,
                        "the SuperLink at \(client.baseURL) stayed unreachable for \(Int(options.patience)) s",
                        cause: error)
                }
                logger.debug("SuperLink not reachable, retrying", metadata: ["error": "\(error)"])
                try await pause(delay, shouldStop: shouldStop)
                delay = min(delay * 2, 5)
            }
        }
        return nil
    }

    /// Sleeps `seconds` in short steps, ending early when asked to stop.
    func pause(_ seconds: Double, shouldStop: @Sendable () -> Bool) async throws {
        var left = seconds
        while left > 0, !shouldStop() {
            let step = min(left, 0.2)
            try await Task.sleep(for: .milliseconds(Int(step * 1000)))
            left -= step
        }
    }

    /// Heartbeats at a third of the promised interval until cancelled; a failed beat is only
    /// logged (the message loop notices a lost SuperLink and reconnects).
    func heartbeats(node: UInt64, shouldStop: @escaping @Sendable () -> Bool) async {
        while !Task.isCancelled, !shouldStop() {
            var request = Flwr_Proto_SendNodeHeartbeatRequest()
            request.node.nodeID = node
            request.heartbeatInterval = options.heartbeatInterval
            do {
                let r: Flwr_Proto_SendNodeHeartbeatResponse = try await client.call(
                    "send-node-heartbeat", request, timeout: 10)
                if !r.success { logger.warning("the SuperLink does not recognize this node's heartbeat") }
            } catch {
                logger.debug("heartbeat failed", metadata: ["error": "\(error)"])
            }
            try? await pause(options.heartbeatInterval / 3, shouldStop: { Task.isCancelled || shouldStop() })
        }
    }

    /// Pulls and answers messages until asked to stop.
    func serve(node: UInt64, shouldStop: @Sendable () -> Bool) async throws {
        var request = Flwr_Proto_PullMessagesRequest()
        request.node.nodeID = node
        while !shouldStop() {
            let pulled: Flwr_Proto_PullMessagesResponse = try await client.call("pull-messages", request)
            guard !pulled.messagesList.isEmpty else {
                try await pause(options.pollInterval, shouldStop: shouldStop)
                continue
            }
            guard pulled.messagesList.count == pulled.messageObjectTrees.count else {
                throw FlowerError(
                    .badResponse,
                    "PullMessages sent \(pulled.messagesList.count) messages and \(pulled.messageObjectTrees.count) trees"
                )
            }
            for (announced, tree) in zip(pulled.messagesList, pulled.messageObjectTrees) {
                try await answer(announced: announced, tree: tree, node: node)
            }
        }
    }

    /// Receives one message, answers it and pushes the reply.
    func answer(announced: Flwr_Proto_Message, tree: Flwr_Proto_ObjectTree, node: UInt64) async throws {
        let clock = ContinuousClock()
        let received = clock.now
        let runID = announced.metadata.runID
        let messageID = announced.metadata.messageID
        guard tree.objectID == messageID else {
            logger.error("refused a message whose tree is not its own", metadata: ["message": "\(messageID)"])
            return
        }
        let message: FlowerMessage
        do {
            message = try await receive(tree: tree, run: runID, node: node)
        } catch let error as FlowerError where !Self.isLost(error) {
            // A message that fails verification is not answered: its metadata cannot be trusted.
            logger.error("refused message", metadata: ["message": "\(messageID)", "error": "\(error)"])
            return
        }
        guard message.metadata.dstNodeID == node, message.metadata.runID == runID else {
            logger.error("refused a message addressed to another node or run", metadata: ["message": "\(messageID)"])
            return
        }
        var confirm = Flwr_Proto_ConfirmMessageReceivedRequest()
        confirm.node.nodeID = node
        confirm.runID = runID
        confirm.messageObjectID = messageID
        let _: Flwr_Proto_ConfirmMessageReceivedResponse = try await client.call("confirm-message-received", confirm)
        let type = message.metadata.messageType
        logger.info("received", metadata: ["type": "\(type)", "run": "\(runID)"])
        let started = clock.now
        let app = self.app
        let threads = options.threads
        let content = message.content ?? FlowerRecordDict()
        let outcome = try await Self.offPool {
            ComputeThreads.withThreads(threads) { app.handle(type: type, content: content) }
        }
        let runtime = (clock.now - started).seconds
        let now = Date().timeIntervalSince1970
        let reply: FlowerMessage
        switch outcome {
        case .success(let content):
            reply = .reply(to: message.metadata, content: content, now: now)
        case .failure(let error):
            logger.error("answering with an error", metadata: ["type": "\(type)", "error": "\(error)"])
            var e = Flwr_Proto_Error()
            e.code = 2  // CLIENT_APP_RAISED_EXCEPTION
            e.reason = "FedSwift node: \(error.message)"
            reply = .reply(to: message.metadata, content: nil, error: e, now: now)
        }
        guard reply.metadata.ttl > 0 else {
            logger.warning("the instruction expired before the reply was ready", metadata: ["message": "\(messageID)"])
            return
        }
        do {
            try await push(reply, node: node, runtime: runtime)
        } catch let error as FlowerError where error.code == .rejected {
            logger.error("reply refused", metadata: ["message": "\(messageID)", "error": "\(error)"])
            return
        }
        lock.withLock { answered += 1 }
        logger.info(
            "replied",
            metadata: [
                "type": "\(type)", "seconds": "\(String(format: "%.3f", runtime))",
                "total": "\(String(format: "%.3f", (clock.now - received).seconds))",
            ])
    }

    /// Pulls every object of `tree` and builds the message from them, verified.
    func receive(tree: Flwr_Proto_ObjectTree, run: UInt64, node: UInt64) async throws -> FlowerMessage {
        guard tree.depth <= 8 else { throw FlowerError(.badTree, "the message's object tree is \(tree.depth) deep") }
        var contents: [String: [UInt8]] = [:]
        for id in tree.postOrderIDs {
            guard FlowerObject.isObjectID(id) else { throw FlowerError(.badTree, "the tree names object '\(id)'") }
            contents[id] = try await pullObject(id, run: run, node: node)
        }
        return try FlowerMessage.inflate(tree: tree, contents: contents)
    }

    /// One object's content, waiting while the SuperLink has it announced but not yet stored.
    func pullObject(_ id: String, run: UInt64, node: UInt64) async throws -> [UInt8] {
        var request = Flwr_Proto_PullObjectRequest()
        request.node.nodeID = node
        request.runID = run
        request.objectID = id
        let started = Date()
        var delay = 0.1
        while true {
            let r: Flwr_Proto_PullObjectResponse = try await client.call("pull-object", request)
            guard r.objectFound else { throw FlowerError(.badTree, "the SuperLink has no object \(id)") }
            if r.objectAvailable {
                // Check the id as soon as the bytes arrive, before anything else reads them.
                let content = Array(r.objectContent)
                guard FlowerObject.id(of: content) == id else {
                    throw FlowerError(.idMismatch, "object \(id) arrived with content of another id")
                }
                return content
            }
            guard Date().timeIntervalSince(started) < options.objectWait else {
                throw FlowerError(.badTree, "object \(id) was not available within \(Int(options.objectWait)) s")
            }
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            delay = min(delay * 2, 2)
        }
    }

    /// Pushes `reply` and the objects the SuperLink asks for.
    func push(_ reply: FlowerMessage, node: UInt64, runtime: Double) async throws {
        let (objects, announced) = try reply.deflate()
        var request = Flwr_Proto_PushMessagesRequest()
        request.node.nodeID = node
        request.messagesList = [announced]
        request.messageObjectTrees = [objects.tree]
        request.clientappRuntimeList = [runtime]
        let r: Flwr_Proto_PushMessagesResponse = try await client.call("push-messages", request)
        // A reply that fails the SuperLink's validation is answered with 200 and no result.
        guard r.results[announced.metadata.messageID] == 0 else {
            throw FlowerError(
                .rejected, "the SuperLink did not accept reply \(announced.metadata.messageID) (results \(r.results))")
        }
        let wanted = Set(r.objectsToPush)
        for object in objects.postOrder where wanted.contains(object.id) {
            var push = Flwr_Proto_PushObjectRequest()
            push.node.nodeID = node
            push.runID = reply.metadata.runID
            push.objectID = object.id
            push.objectContent = Data(object.content)
            push.sessionID = r.sessionID
            let stored: Flwr_Proto_PushObjectResponse = try await client.call("push-object", push, timeout: 300)
            guard stored.stored else {
                throw FlowerError(.rejected, "the SuperLink did not store object \(object.id) of the reply")
            }
        }
    }

    /// Deactivates the node, and unregisters a key it registered itself.
    func leave() async {
        guard let id = nodeID else { return }
        var deactivate = Flwr_Proto_DeactivateNodeRequest()
        deactivate.nodeID = id
        let _: Flwr_Proto_DeactivateNodeResponse? = try? await client.call("deactivate-node", deactivate, timeout: 5)
        if lock.withLock({ registeredHere }) {
            var unregister = Flwr_Proto_UnregisterNodeFleetRequest()
            unregister.nodeID = id
            let _: Flwr_Proto_UnregisterNodeFleetResponse? = try? await client.call(
                "unregister-node", unregister, timeout: 5)
        }
        logger.info("left the federation", metadata: ["node": "\(id)"])
    }

    /// Runs `work` on a thread of its own, so that training never blocks Swift's cooperative pool
    /// (where the heartbeats run).
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
