import FedCompress
import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation
import GRPCCore

/// A networked client: dials the coordinator, joins, and answers every round's task with its
/// local update (``LocalUpdate``, the same one the simulator's clients run), encoded as the task
/// says with the client's own error-feedback memory. It keeps its strategy state (SCAFFOLD's
/// control) and commits a round's new state when the coordinator accepts the update.
///
/// Training runs on ``TrainingWorkers`` threads, never on Swift's cooperative pool, so sessions
/// keep sending heartbeats while their clients train; the clients of one process share them.
public final class FederatedClient: @unchecked Sendable {
    public let config: ExperimentConfig
    public let index: Int
    let indices: [Int]
    let data: LabeledDataset
    let workers: TrainingWorkers
    let parameterCount: Int
    let algorithm: any ClientAlgorithm
    let token: String
    let tensors: [TensorwiseCodec.Tensor]
    /// What the client remembers between rounds; touched by its session's task only.
    private var memory = ErrorFeedbackState()
    private var state: [String: [Float]] = [:]
    private var pending: (round: Int, state: [String: [Float]])?
    /// Codecs by their spec (without the per-round stream), so stateful codecs keep their memory.
    private var codecs: [String: any Codec] = [:]
    /// The memory as it was before each of the last two rounds trained (oldest first), to train a
    /// round again from it when a restarted coordinator repeats it. Two: the coordinator writes a
    /// round's checkpoint while the next round trains, so a restart may go back two rounds.
    private var snapshots:
        [(
            round: Int, memory: ErrorFeedbackState, warmStarts: [String: [String: [Float]]],
            state: [String: [Float]]
        )] = []
    /// Whether the current session was welcomed (a later failure is then a lost connection).
    var joined = false

    /// Client `index` of `config`, training on the samples `indices` of `data` with `workers`.
    public init(
        config: ExperimentConfig, index: Int, data: LabeledDataset, indices: [Int], workers: TrainingWorkers,
        token: String = ""
    ) throws {
        self.config = config
        self.index = index
        self.data = data
        self.indices = indices
        self.workers = workers
        algorithm = try config.makeStrategy()
            .clientAlgorithm
        self.token = token
        tensors = workers.tensors
        parameterCount = workers.parameterCount
    }

    /// Client `index` of `config`, training on its partition of `train` (the same split the
    /// simulator makes from the experiment's seed) on a worker thread of its own.
    public convenience init(config: ExperimentConfig, index: Int, train: LabeledDataset, token: String = "") throws {
        try self.init(
            config: config, index: index, data: train, indices: try Self.partition(config, train)[index],
            workers: try TrainingWorkers(config: config, threads: 1), token: token)
    }

    /// Clients `range` of `config` on their partitions of `train`, sharing `threads` training threads.
    public static func clients(
        _ range: Range<Int>, config: ExperimentConfig, train: LabeledDataset, threads: Int, token: String = ""
    ) throws -> [FederatedClient] {
        let split = try partition(config, train)
        let workers = try TrainingWorkers(config: config, threads: threads)
        return try range.map {
            try FederatedClient(
                config: config, index: $0, data: train, indices: split[$0], workers: workers, token: token)
        }
    }

    /// The experiment's partition of `train`: every client's sample indices.
    static func partition(_ config: ExperimentConfig, _ train: LabeledDataset) throws -> [[Int]] {
        try Partitioner.split(
            labels: train.labels, classes: train.classCount, clients: config.partition.clients,
            scheme: config.partition.partitionScheme, seed: config.seed
        ).clientIndices
    }

    /// Runs one session over `client` until the coordinator ends it.
    public func run(_ client: GRPCClient<some ClientTransport>) async throws {
        let coordinator = Fedswift_V1_Coordinator.Client(wrapping: client)
        let (outbound, continuation) = AsyncStream.makeStream(of: Fedswift_V1_ClientMessage.self)
        var join = Fedswift_V1_Join()
        join.protocolVersion = Wire.protocolVersion
        join.clientIndex = UInt32(index)
        join.token = token
        join.capabilities.codecs = Codecs.catalog.map(\.name)
        join.capabilities.model = config.model
        join.capabilities.parameterCount = UInt64(parameterCount)
        join.capabilities.device = Self.device
        join.capabilities.sampleCount = UInt64(indices.count)
        join.capabilities.experimentFingerprint = workers.fingerprint
        var first = Fedswift_V1_ClientMessage()
        first.join = join
        continuation.yield(first)
        let heartbeat = HeartbeatInterval()
        try await coordinator.session(
            requestProducer: { writer in
                // Heartbeats go out beside the client's messages for as long as the session lasts.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while true {
                            try await Task.sleep(for: .seconds(heartbeat.seconds))
                            var beat = Fedswift_V1_ClientMessage()
                            beat.heartbeat = Fedswift_V1_Heartbeat()
                            continuation.yield(beat)
                        }
                    }
                    for await message in outbound { try await writer.write(message) }
                    group.cancelAll()
                }
            },
            onResponse: { response in
                defer { continuation.finish() }
                var chunkLimit = 1 << 20
                var task: Fedswift_V1_RoundTask?
                var model: ChunkAssembler?
                for try await message in response.messages {
                    switch message.kind {
                    case .welcome(let w):
                        chunkLimit = max(1, Int(clamping: w.maxChunkBytes))
                        if w.heartbeatSeconds > 0 { heartbeat.seconds = Double(w.heartbeatSeconds) / 2 }
                        self.joined = true
                    case .task(let t):
                        task = t
                        model = try ChunkAssembler(total: Int(clamping: t.modelBytes), maximum: 1 << 40)
                    case .model(let chunk):
                        guard let t = task, chunk.round == t.round, model != nil else { continue }
                        try model!.add(offset: Int(clamping: chunk.offset), data: chunk.data, last: chunk.last)
                        if model!.complete {
                            let bytes = model!.take()
                            model = nil
                            let limit = chunkLimit
                            let messages = try await self.workers.run(priority: self.indices.count) { local in
                                try self.answer(t, payload: bytes, chunkLimit: limit, local: local)
                            }
                            for m in messages { continuation.yield(m) }
                        }
                    case .result(let r): self.commit(r)
                    case .heartbeat, nil: break
                    }
                }
            })
    }

    /// What a client tells the coordinator about its device.
    static let device: String = {
        let info = ProcessInfo.processInfo
        return "FedSwift client; \(info.operatingSystemVersionString); \(info.activeProcessorCount) cores"
    }()

    /// Trains on the round's model with `local` and returns the update's chunks.
    func answer(
        _ task: Fedswift_V1_RoundTask, payload: [UInt8], chunkLimit: Int, local: LocalUpdate
    ) throws
        -> [Fedswift_V1_ClientMessage]
    {
        var bytes = payload
        let vectors = try Wire.unpack(&bytes, layout: task.vectors)
        var start = [Float](repeating: 0, count: parameterCount)
        try start.withUnsafeMutableBufferPointer { try IdentityCodec.decode(bytes, into: $0) }
        let round = Int(task.round)
        if let i = snapshots.firstIndex(where: { $0.round >= round }) {
            // A coordinator that restarted from an earlier checkpoint repeats a round this client
            // already trained: start it again from the memory the client had before the first
            // round it trained since (nothing changed the memory in between).
            let snapshot = snapshots[i]
            memory = snapshot.memory
            state = snapshot.state
            for (key, saved) in snapshot.warmStarts {
                (codecs[key] as? TensorwiseCodec)?.powerSGD?.restore(warmStarts: saved)
            }
            snapshots.removeSubrange(i...)
        }
        snapshots.append(
            (
                round,
                ErrorFeedbackState(residual: memory.residual, estimate: memory.estimate, velocity: memory.velocity),
                codecs.compactMapValues { ($0 as? TensorwiseCodec)?.powerSGD?.savedWarmStarts }, state
            ))
        if snapshots.count > 2 { snapshots.removeFirst() }
        let rule = algorithm.makeRule(broadcast: vectors, state: state)
        let plan = task.hasUplink ? try plan(task.uplink) : nil
        let reply = try start.withUnsafeBufferPointer {
            try local.run(
                client: index, round: Int(task.round), indices: indices, data: data, start: $0, seed: config.seed,
                rule: rule, uplink: plan, memory: memory)
        }
        FaultInjection.point("client-trained")
        pending = (Int(task.round), reply.state)
        var summary = Fedswift_V1_UpdateSummary()
        summary.sampleCount = UInt64(reply.sampleCount)
        summary.samplesProcessed = UInt64(reply.samplesProcessed)
        summary.steps = UInt64(reply.steps)
        summary.trainLoss = reply.trainLoss
        summary.computeSeconds = reply.computeSeconds
        summary.failure = reply.failure ?? ""
        let (chunks, layout, total) = Wire.chunks(reply.payload, vectors: reply.upload, size: chunkLimit)
        summary.upload = layout
        return chunks.map { piece in
            var c = Fedswift_V1_UpdateChunk()
            c.round = task.round
            c.attempt = task.attempt
            c.offset = UInt64(piece.offset)
            c.data = piece.data
            c.totalBytes = UInt64(total)
            c.last = piece.last
            if piece.last { c.summary = summary }
            var m = Fedswift_V1_ClientMessage()
            m.update = c
            return m
        }
    }

    /// The uplink plan of a task's spec; the codec is reused while the spec stays the same.
    func plan(_ spec: Fedswift_V1_UplinkSpec) throws -> UplinkPlan {
        guard let feedback = CompressionConfig.Channel.Feedback(rawValue: spec.errorFeedback) else {
            throw WireError("unknown error feedback '\(spec.errorFeedback)'")
        }
        let key =
            "\(spec.codec) \(spec.parameters.sorted { $0.key < $1.key }) \(spec.perTensor) \(spec.minTensorElements)"
        let codec: any Codec
        if let cached = codecs[key] {
            codec = cached
        } else {
            let inner = try Codecs.make(name: spec.codec, parameters: spec.parameters)
            let layout =
                spec.perTensor
                ? tensors : [TensorwiseCodec.Tensor(name: "update", shape: [tensors.reduce(0) { $0 + $1.count }])]
            codec = try TensorwiseCodec(
                tensors: layout, codec: inner,
                minimumElements: spec.perTensor ? Int(clamping: spec.minTensorElements) : 0)
            codecs[key] = codec
        }
        let scheme: ErrorFeedback =
            switch feedback {
            case .none: .none
            case .residual: .residual
            case .ef21: .ef21
            case .dgc: .dgc(momentum: Float(spec.momentum))
            }
        return UplinkPlan(
            codec: codec, feedback: scheme,
            context: CodecContext(seed: spec.seed, stream: spec.stream, key: spec.key.isEmpty ? nil : spec.key))
    }

    /// Keeps the round's new strategy state if the coordinator accepted the update.
    func commit(_ result: Fedswift_V1_RoundResult) {
        guard let pending, pending.round == Int(result.round) else { return }
        if result.accepted && !pending.state.isEmpty { state = pending.state }
        self.pending = nil
    }
}

extension TensorwiseCodec {
    /// The inner PowerSGD codec, whose warm starts are state.
    var powerSGD: PowerSGDCodec? { codec as? PowerSGDCodec }
}

/// How often a session sends a heartbeat: half the coordinator's announced interval. Until the
/// Welcome arrives it is half a second, below any interval the coordinator can announce (whole
/// seconds), so the first sleep never outlasts the coordinator's patience.
final class HeartbeatInterval: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0.5
    var seconds: Double {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// Threads that run the local training of a process's clients (each with its own model and
/// buffers, ``LocalUpdate``), outside Swift's cooperative pool, one job at a time per thread:
/// the waiting job of highest priority first (clients pass their sample count, so the largest
/// trains first, as on the simulator's workers), in the order asked for among equals. The threads
/// end when the workers are released.
public final class TrainingWorkers: @unchecked Sendable {
    let parameterCount: Int
    let tensors: [TensorwiseCodec.Tensor]
    /// The experiment's fingerprint, computed once for the process's clients (it serializes the
    /// whole config).
    let fingerprint: String
    private let queue: JobQueue

    /// `threads` workers for `config`'s model, each training single-threaded.
    public init(config: ExperimentConfig, threads: Int) throws {
        let locals = try (0..<max(1, threads)).map { _ in
            try LocalUpdate(model: config.model, seed: config.seed, training: config.local)
        }
        parameterCount = locals[0].model.parameterCount
        fingerprint = config.fingerprint
        tensors = locals[0].model.parameters.entries.map {
            TensorwiseCodec.Tensor(name: $0.name, shape: $0.shape.dims)
        }
        let queue = JobQueue()
        self.queue = queue
        for local in locals {
            let thread = Thread {
                while let job = queue.next() { ComputeThreads.withThreads(1) { job(local) } }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    deinit { queue.close() }

    /// Runs `body` with a worker's `LocalUpdate` on its thread, after the waiting jobs of higher
    /// priority.
    func run<R: Sendable>(
        priority: Int = 0, _ body: @escaping @Sendable (LocalUpdate) throws -> R
    ) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            queue.add(priority: priority) { local in continuation.resume(with: Result { try body(local) }) }
        }
    }

    final class JobQueue: @unchecked Sendable {
        private let condition = NSCondition()
        private var jobs: [(priority: Int, job: (LocalUpdate) -> Void)] = []
        private var closed = false

        func add(priority: Int, _ job: @escaping (LocalUpdate) -> Void) {
            condition.withLock {
                jobs.append((priority, job))
                condition.signal()
            }
        }

        /// The waiting job of highest priority (the first asked for among equals), waiting for
        /// one; nil once closed.
        func next() -> ((LocalUpdate) -> Void)? {
            condition.lock()
            defer { condition.unlock() }
            while jobs.isEmpty && !closed { condition.wait() }
            guard var best = jobs.indices.first else { return nil }
            for i in jobs.indices where jobs[i].priority > jobs[best].priority { best = i }
            return jobs.remove(at: best).job
        }

        func close() {
            condition.withLock {
                closed = true
                condition.broadcast()
            }
        }
    }
}
