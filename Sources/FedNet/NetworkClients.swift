import FedCompress
import FedCore
import FedEngine
import Foundation
import Logging

/// The coordinator's client pool: the clients connected over the network, each a session of the
/// `Coordinator.Session` stream (see ``CoordinatorService``). The round engine asks it for a
/// round's replies; it sends each selected client its task and the model, waits for the updates
/// (until every client answered, vanished, or the round's deadline passed), and reports each
/// reply with its real finish time.
///
/// Sessions register and deliver chunks from gRPC's tasks; the engine calls ``train(_:)`` from its
/// own thread, which blocks until the round's replies are in. All state is behind one lock.
///
/// A session that sends nothing (no chunk, no heartbeat) for twice ``heartbeatSeconds`` is ended
/// by its service (``silence(client:id:)``) and leaves the round's waiting list at once. Refused
/// and rejected updates are logged with their reason (never a token) and counted in ``metrics``.
public final class NetworkClients: ClientPool, @unchecked Sendable {
    public let config: ExperimentConfig
    /// Largest chunk either side sends or accepts.
    public let maximumChunkBytes: Int
    /// Longest a round waits for replies when the experiment sets no deadline.
    public let roundTimeout: Double
    /// How often an idle client must send a heartbeat (announced in the Welcome).
    public let heartbeatSeconds: Double
    /// The largest upload accepted (``Wire/maximumUpload(parameterCount:tensors:vectorValues:)``).
    public let maximumUploadBytes: Int
    public let metrics: CoordinatorMetrics
    let logger: Logger
    /// Called on the engine's thread once a round's tasks are out, while the clients train (the
    /// coordinator finishes writing the previous round's checkpoint there); an error ends the run.
    var whileTraining: () throws -> Void = {}
    let parameterCount: Int

    struct Session {
        let id: UInt64
        let outbound: AsyncStream<Fedswift_V1_CoordinatorMessage>.Continuation
        /// The sample count the client announced; larger clients get their task first.
        let samples: Int
        /// The upload in progress: one per session, a new (round, attempt) replaces it.
        var upload: (round: Int, attempt: Int, assembler: ChunkAssembler)?
        var lastHeard = ContinuousClock.now
    }

    private struct State {
        var sessions: [Int: Session] = [:]
        var nextSession: UInt64 = 0
        /// The round in progress and its start; replies of other rounds are ignored.
        var round = 0
        var started = ContinuousClock.now
        var waiting: Set<Int> = []
        var replies: [Int: ClientReply] = [:]
        /// The clients that answered the round handed to the engine, and whether each reported a
        /// failure (the replies themselves go to the engine).
        var answered: [Int: Bool] = [:]
        /// When the last reply of the previous round arrived, and the gaps from there to the next
        /// round's first task (aggregation, evaluation, checkpoint: the coordinator's own time).
        var lastReply: ContinuousClock.Instant?
        var gaps: [Double] = []
        /// Set by ``closeAll(stopping:)`` when the coordinator stops before the run is over.
        var stopping = false
    }

    private let lock = NSCondition()
    private var state = State()

    public init(
        config: ExperimentConfig, parameterCount: Int, tensors: Int = 1, uploadVectorValues: Int = 0,
        maximumChunkBytes: Int = 1 << 20, roundTimeout: Double = 600, heartbeatSeconds: Double = 30,
        metrics: CoordinatorMetrics = CoordinatorMetrics(), logger: Logger = Logger(label: "fedswift.coordinator")
    ) {
        self.config = config
        self.parameterCount = parameterCount
        self.maximumChunkBytes = maximumChunkBytes
        self.roundTimeout = roundTimeout
        // Whole seconds, at least one: the Welcome announces it as such, and the coordinator's
        // patience must be what the clients were told.
        self.heartbeatSeconds = max(1, heartbeatSeconds.rounded(.up))
        self.metrics = metrics
        self.logger = logger
        maximumUploadBytes = Wire.maximumUpload(
            parameterCount: parameterCount, tensors: tensors, vectorValues: uploadVectorValues)
    }

    private func locked<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer {
            lock.broadcast()
            lock.unlock()
        }
        return try body(&state)
    }

    /// Seconds from each round's last reply to the next round's first task.
    public var gaps: [Double] { locked { $0.gaps } }

    /// The indices of the connected clients, sorted.
    public var connected: [Int] { locked { $0.sessions.keys.sorted() } }

    /// Blocks until at least `count` clients are connected, `timeout` seconds pass or `stop` says
    /// so (asked every quarter second); returns how many are connected.
    public func waitForClients(_ count: Int, timeout: Double, stop: () -> Bool = { false }) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while state.sessions.count < count && Date() < deadline && !stop() {
            _ = lock.wait(until: min(deadline, Date().addingTimeInterval(0.25)))
        }
        return state.sessions.count
    }

    // MARK: - Sessions (called from gRPC's tasks)

    /// Registers `client`'s session, replacing (and ending) an earlier one of the same client.
    func register(
        client: Int, samples: Int = 0, outbound: AsyncStream<Fedswift_V1_CoordinatorMessage>.Continuation
    ) -> UInt64 {
        locked { s in
            s.nextSession += 1
            if let old = s.sessions[client] {
                old.outbound.finish()
                metrics.endedSession(cause: "replaced")
                logger.info("session replaced by a new one", metadata: ["client": "\(client)"])
            }
            s.sessions[client] = Session(id: s.nextSession, outbound: outbound, samples: samples, upload: nil)
            metrics.connected(s.sessions.count)
            return s.nextSession
        }
    }

    /// Ends every session. When the run is over clients see its end; with `stopping` (the
    /// coordinator stops early) their streams end with UNAVAILABLE, and they reconnect.
    public func closeAll(stopping: Bool = false) {
        locked { s in
            s.stopping = stopping
            for session in s.sessions.values { session.outbound.finish() }
        }
    }

    /// Whether ``closeAll(stopping:)`` ended the sessions before the run was over.
    var stopping: Bool { locked { $0.stopping } }

    /// Removes `client`'s session `id` (a later session of the same client stays).
    func unregister(client: Int, id: UInt64) {
        locked { s in
            guard s.sessions[client]?.id == id else { return }
            s.sessions[client] = nil
            s.waiting.remove(client)
            metrics.connected(s.sessions.count)
        }
    }

    /// Notes that `client`'s session `id` was heard from.
    func heard(client: Int, id: UInt64) {
        locked { s in
            if s.sessions[client]?.id == id { s.sessions[client]!.lastHeard = .now }
        }
    }

    /// Seconds since `client`'s session `id` was last heard from (nil: the session is gone).
    func silence(client: Int, id: UInt64) -> Double? {
        locked { s in
            guard let session = s.sessions[client], session.id == id else { return nil }
            return (ContinuousClock.now - session.lastHeard).seconds
        }
    }

    /// Adds one chunk of `client`'s upload; a complete upload becomes the client's reply.
    /// - Throws: ``WireError`` for a chunk that breaks the contract (the session is then ended).
    func receive(_ chunk: Fedswift_V1_UpdateChunk, from client: Int) throws {
        try locked { s in
            // Taken out of the table while its upload grows, so the assembler's bytes have one
            // owner and each chunk is appended in place (not copied with all before it).
            guard var session = s.sessions.removeValue(forKey: client) else { return }
            defer { s.sessions[client] = session }
            session.lastHeard = .now
            let round = Int(chunk.round)
            let attempt = Int(chunk.attempt)
            guard round == s.round, s.waiting.contains(client) else { return }  // late, repeated or unasked: ignored
            if session.upload == nil || session.upload!.round != round || session.upload!.attempt != attempt {
                session.upload = (
                    round, attempt,
                    try ChunkAssembler(total: Int(clamping: chunk.totalBytes), maximum: maximumUploadBytes)
                )
            }
            guard chunk.data.count <= maximumChunkBytes else {
                throw WireError("chunk of \(chunk.data.count) bytes is above the limit of \(maximumChunkBytes)")
            }
            guard Int(clamping: chunk.totalBytes) == session.upload!.assembler.total else {
                throw WireError("chunks of one upload announce different sizes")
            }
            try session.upload!.assembler.add(offset: Int(clamping: chunk.offset), data: chunk.data, last: chunk.last)
            if session.upload!.assembler.complete {
                var payload = session.upload!.assembler.take()
                session.upload = nil
                let summary = chunk.summary
                metrics.received(bytes: payload.count)
                let upload = try Wire.unpack(&payload, layout: summary.upload)
                let bytes = payload.count + upload.values.reduce(0) { $0 + IdentityCodec.size(count: $1.count) }
                s.replies[client] = ClientReply(
                    client: client, payload: payload, upload: upload, uploadBytes: bytes,
                    sampleCount: Int(clamping: summary.sampleCount),
                    samplesProcessed: Int(clamping: summary.samplesProcessed), steps: Int(clamping: summary.steps),
                    trainLoss: summary.trainLoss, finishTime: (ContinuousClock.now - s.started).seconds,
                    computeSeconds: summary.computeSeconds, failure: summary.failure.isEmpty ? nil : summary.failure)
                s.waiting.remove(client)
                s.lastReply = .now
            }
        }
    }

    // MARK: - ClientPool (called from the engine's thread)

    public func available(_ selected: [Int], round: Int) -> [Int] {
        locked { s in selected.filter { s.sessions[$0] != nil } }
    }

    /// No link is measured yet: every client gets the experiment's median uplink.
    public func link(of client: Int) -> ClientLink {
        ClientLink(bandwidth: 10_000_000, latency: 0)
    }

    public func train(_ request: RoundRequest) throws -> [ClientReply] {
        // The model (an identity-codec payload) and the vectors, cut straight into chunks: one
        // copy of the payload, shared by the sessions.
        let (chunks, layout, payloadBytes) = Wire.chunks(
            IdentityCodec.header(count: request.model.count), values: request.model, vectors: request.vectors,
            size: maximumChunkBytes)
        let limit = config.deadlineSeconds ?? roundTimeout
        metrics.started(round: request.round)
        locked { s in
            s.round = request.round
            s.started = .now
            if let last = s.lastReply { s.gaps.append((s.started - last).seconds) }
            s.replies = [:]
            s.answered = [:]
            s.waiting = []
            // Largest clients first: their download completes first and a process hosting several
            // clients starts their training first (longest-processing-time order, as the
            // simulator's workers take them).
            let order = request.tasks.sorted {
                (s.sessions[$0.client]?.samples ?? 0, $1.client) > (s.sessions[$1.client]?.samples ?? 0, $0.client)
            }
            for task in order {
                guard let session = s.sessions[task.client] else { continue }
                var t = Fedswift_V1_RoundTask()
                t.round = UInt32(request.round)
                t.attempt = 1
                t.modelBytes = UInt64(payloadBytes)
                t.vectors = layout
                t.deadlineSeconds = config.deadlineSeconds ?? 0
                if let plan = task.uplink { t.uplink = uplinkSpec(plan) }
                var message = Fedswift_V1_CoordinatorMessage()
                message.task = t
                session.outbound.yield(message)
                for chunk in chunks {
                    var c = Fedswift_V1_ModelChunk()
                    c.round = UInt32(request.round)
                    c.offset = UInt64(chunk.offset)
                    c.data = chunk.data
                    c.last = chunk.last
                    var m = Fedswift_V1_CoordinatorMessage()
                    m.model = c
                    session.outbound.yield(m)
                }
                s.waiting.insert(task.client)
                metrics.sent(bytes: payloadBytes)
            }
        }
        try whileTraining()
        let deadline = Date().addingTimeInterval(limit)
        lock.lock()
        while !state.waiting.isEmpty && lock.wait(until: deadline) {}
        let replies = Array(state.replies.values)
        state.answered = state.replies.mapValues { $0.failure != nil }
        state.replies = [:]  // the engine becomes the payloads' only owner
        state.waiting = []
        lock.unlock()
        return replies
    }

    public func finished(round: Int, accepted: [Int], rejected: [Int: String]) {
        let kept = Set(accepted)
        metrics.accepted(updates: accepted.count)
        locked { s in
            for (client, reason) in rejected.sorted(by: { $0.key < $1.key }) {
                let kind =
                    s.answered[client] == true
                    ? "client_failure" : reason.hasPrefix("late") ? "late" : "invalid"
                metrics.rejected(reason: kind)
                logger.warning(
                    "update rejected",
                    metadata: ["client": "\(client)", "round": "\(round)", "kind": "\(kind)", "reason": "\(reason)"])
            }
            for (client, session) in s.sessions where s.answered[client] != nil {
                var r = Fedswift_V1_RoundResult()
                r.round = UInt32(round)
                r.attempt = 1
                r.accepted = kept.contains(client)
                r.reason = rejected[client] ?? ""
                var m = Fedswift_V1_CoordinatorMessage()
                m.result = r
                session.outbound.yield(m)
            }
        }
    }

    /// The wire form of an uplink plan: the experiment's uplink channel with the plan's ratio and stream.
    func uplinkSpec(_ plan: UplinkPlan) -> Fedswift_V1_UplinkSpec {
        var spec = Fedswift_V1_UplinkSpec()
        guard let channel = config.compression.uplink else { return spec }
        spec.codec = channel.codec
        spec.parameters = channel.parameters
        if let ratio = plan.ratio { spec.parameters["ratio"] = ratio }
        spec.errorFeedback = channel.errorFeedback.rawValue
        spec.momentum = channel.momentum
        spec.perTensor = channel.perTensor
        spec.minTensorElements = UInt64(channel.minTensorElements)
        spec.seed = plan.context.seed
        spec.stream = plan.context.stream
        spec.key = plan.context.key ?? ""
        return spec
    }
}
