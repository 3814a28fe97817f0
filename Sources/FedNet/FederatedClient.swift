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
public final class FederatedClient: @unchecked Sendable {
    public let config: ExperimentConfig
    public let index: Int
    let indices: [Int]
    let data: LabeledDataset
    let local: LocalUpdate
    let algorithm: any ClientAlgorithm
    let token: String
    let tensors: [TensorwiseCodec.Tensor]
    /// What the client remembers between rounds; touched by its session's task only.
    private var memory = ErrorFeedbackState()
    private var state: [String: [Float]] = [:]
    private var pending: (round: Int, state: [String: [Float]])?
    /// Codecs by their spec (without the per-round stream), so stateful codecs keep their memory.
    private var codecs: [String: any Codec] = [:]
    /// The memory as it was before the last round trained, to train that round again from it when
    /// a restarted coordinator repeats the round.
    private var snapshot:
        (
            round: Int, memory: ErrorFeedbackState, warmStarts: [String: [String: [Float]]],
            state: [String: [Float]]
        )?
    /// Whether the current session was welcomed (a later failure is then a lost connection).
    var joined = false

    /// Client `index` of `config`, training on its partition of `train` (the same split the
    /// simulator makes from the experiment's seed).
    public init(config: ExperimentConfig, index: Int, train: LabeledDataset, token: String = "") throws {
        self.config = config
        self.index = index
        data = train
        indices = try Partitioner.split(
            labels: train.labels, classes: train.classCount, clients: config.partition.clients,
            scheme: config.partition.partitionScheme, seed: config.seed
        ).clientIndices[index]
        local = try LocalUpdate(model: config.model, seed: config.seed, training: config.local)
        algorithm = try StrategyFactory.makeStrategy(name: config.strategy, parameters: config.strategyParameters)
            .clientAlgorithm
        self.token = token
        tensors = local.model.parameters.entries.map { TensorwiseCodec.Tensor(name: $0.name, shape: $0.shape.dims) }
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
        join.capabilities.parameterCount = UInt64(local.model.parameterCount)
        join.capabilities.sampleCount = UInt64(indices.count)
        join.capabilities.experimentFingerprint = config.fingerprint
        var first = Fedswift_V1_ClientMessage()
        first.join = join
        continuation.yield(first)
        try await coordinator.session(
            requestProducer: { writer in
                for await message in outbound { try await writer.write(message) }
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
                        self.joined = true
                    case .task(let t):
                        task = t
                        model = try ChunkAssembler(total: Int(clamping: t.modelBytes), maximum: 1 << 34)
                    case .model(let chunk):
                        guard let t = task, chunk.round == t.round, model != nil else { continue }
                        try model!.add(offset: Int(clamping: chunk.offset), data: chunk.data, last: chunk.last)
                        if model!.complete {
                            let bytes = model!.bytes
                            model = nil
                            for m in try self.answer(t, model: bytes, chunkLimit: chunkLimit) { continuation.yield(m) }
                        }
                    case .result(let r): self.commit(r)
                    case .heartbeat, nil: break
                    }
                }
            })
    }

    /// Trains on the round's model and returns the update's chunks.
    func answer(
        _ task: Fedswift_V1_RoundTask, model bytes: [UInt8], chunkLimit: Int
    ) throws
        -> [Fedswift_V1_ClientMessage]
    {
        var start = [Float](repeating: 0, count: local.model.parameterCount)
        try start.withUnsafeMutableBufferPointer { try IdentityCodec.decode(bytes, into: $0) }
        let round = Int(task.round)
        if let snapshot, snapshot.round >= round {
            // A coordinator that restarted from an earlier checkpoint repeats a round this client
            // already trained: start it again from the memory the client had then.
            memory = snapshot.memory
            state = snapshot.state
            for (key, saved) in snapshot.warmStarts {
                (codecs[key] as? TensorwiseCodec)?.powerSGD?.restore(warmStarts: saved)
            }
        }
        snapshot = (
            round, ErrorFeedbackState(residual: memory.residual, estimate: memory.estimate, velocity: memory.velocity),
            codecs.compactMapValues { ($0 as? TensorwiseCodec)?.powerSGD?.savedWarmStarts }, state
        )
        let vectors = try Wire.floats(task.vectors)
        let rule = algorithm.makeRule(broadcast: vectors, state: state)
        let plan = task.hasUplink ? try plan(task.uplink) : nil
        let reply = try ComputeThreads.withThreads(1) {
            try start.withUnsafeBufferPointer {
                try local.run(
                    client: index, round: Int(task.round), indices: indices, data: data, start: $0, seed: config.seed,
                    rule: rule, uplink: plan, memory: memory)
            }
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
        summary.upload = Wire.vectors(reply.upload)
        return Wire.chunks(reply.payload, size: chunkLimit).map { piece in
            var c = Fedswift_V1_UpdateChunk()
            c.round = task.round
            c.attempt = task.attempt
            c.offset = UInt64(piece.offset)
            c.data = piece.data
            c.totalBytes = UInt64(reply.payload.count)
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
