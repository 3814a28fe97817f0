import FedCompress
import FedCore
import FedNN
import FedTensor

/// The federated protocol, one round at a time, for any ``ClientPool``: the simulator's virtual
/// clients and the network's real ones run exactly these rounds.
///
/// A round:
/// 1. Selection: `ceil(k·(1 + over_selection))` clients drawn from the seeded stream
///    `select/round/<r>`; the pool says which of them are available.
/// 2. Broadcast: the dense global model, or its compressed change with the server's residual
///    (``Broadcast``), plus the strategy's vectors; each selected client's download is counted.
/// 3. Local updates, by the pool: each available client gets its uplink plan (codec, keep ratio
///    from the ratio policy, error feedback) and the per-client state its strategy rule kept.
/// 4. Deadline and over-selection on the finish times the pool reports: the first `k` to finish
///    within the deadline are kept.
/// 5. The receive path (``UpdateReceiver``): decode, validate, EF21 estimates; a rejected update is
///    dropped, its bytes still counted. OPWA rescaling for sparse updates.
/// 6. The strategy aggregates the accepted updates (unless fewer than `min_completed`), and the
///    accepted clients' new rule state is kept.
///
/// ```swift
/// let engine = try RoundEngine(config: config, model: try ModelZoo.make(config.model, seed: config.seed))
/// for round in 1...config.rounds { let row = try engine.runRound(round, pool: pool) }
/// ```
public final class RoundEngine {
    public let config: ExperimentConfig
    /// The global model; its parameters are the server's weights.
    public let model: Model
    public let strategy: any Strategy
    /// The last round run (0 before the first).
    public private(set) var round = 0
    /// The strategy rules' per-client state, for clients whose update was accepted.
    public private(set) var clientStates: [Int: [String: [Float]]] = [:]
    /// The compressed broadcast, when the downlink is compressed.
    let broadcast: Broadcast?
    /// The uplink codec when every client uses the same one (no ratio policy); shared so that
    /// stateful codecs (PowerSGD's warm starts, keyed by client and tensor) keep their state.
    let uplinkCodec: TensorwiseCodec?
    private let ratioPolicy: (any RatioPolicy)?
    private let tensors: [TensorwiseCodec.Tensor]
    var receiver: UpdateReceiver
    /// Buffers for received updates, recycled every round.
    private var deltaPool: [[Float]] = []
    /// The global model of `round` as saved by ``save(into:)``, kept for the next round's request:
    /// the checkpoint being written and the clients' start model share one copy.
    private var saved: (round: Int, values: [Float])?

    /// An engine for `config` around the global `model` (its current weights are round 0's).
    /// - Throws: ``ConfigError`` for a strategy or codec the config cannot build.
    public init(config: ExperimentConfig, model: Model) throws {
        self.config = config
        self.model = model
        do {
            strategy = try config.makeStrategy()
        } catch {
            throw ConfigError(key: "strategy", "\(error)")
        }
        let layout = model.parameters.entries.map { TensorwiseCodec.Tensor(name: $0.name, shape: $0.shape.dims) }
        tensors = layout
        ratioPolicy = config.compression.ratioPolicy?.make()
        uplinkCodec = try config.compression.uplink.map { try $0.make(tensors: layout) }
        let initial = UnsafeBufferPointer(model.parameters.values)
        broadcast = try config.compression.downlink.map {
            Broadcast(
                codec: try $0.make(tensors: layout), feedback: $0.feedback, initial: initial,
                clients: config.partition.clients, seed: config.seed)
        }
        receiver = UpdateReceiver(
            parameterCount: model.parameterCount, reportsCoverage: config.compression.aggregation == .opwa,
            maximumNorm: config.maximumUpdateNorm)
    }

    /// A copy of the global model, the one ``save(into:)`` made when it saved this round (handed
    /// over: the engine keeps no reference) or a new one.
    private func takeGlobal() -> [Float] {
        defer { saved = nil }
        if let saved, saved.round == round { return saved.values }
        return Array(model.parameters.values)
    }

    /// Keeps an update slot for the next round, unless it is larger than the server keeps
    /// (``ScratchPolicy``).
    private func recycle(_ slot: [Float]) {
        if slot.count * MemoryLayout<Float>.stride <= ScratchPolicy.keptBytes { deltaPool.append(slot) }
    }

    /// The clients selected for `round`, sorted: `ceil(k·(1 + over_selection))` of them, drawn
    /// without replacement from the stream `select/round/<round>`.
    public func selection(round: Int) -> [Int] {
        let clients = config.partition.clients
        let m = min(clients, Int((Double(config.clientsPerRound) * (1 + config.overSelection)).rounded(.up)))
        var rng = SeededRNG(seed: config.seed, stream: "select/round/\(round)")
        var pool = Array(0..<clients)
        for i in 0..<m { pool.swapAt(i, i + rng.nextInt(below: clients - i)) }
        return pool[0..<m].sorted()
    }

    /// How each of `clients` sends its update in `round` (nil entries: dense float32).
    func uplinks(for clients: [Int], round: Int, pool: any ClientPool) throws -> [UplinkPlan?] {
        guard let channel = config.compression.uplink else { return clients.map { _ in nil } }
        var ratios: [Double?] = clients.map { _ in nil }
        if let ratioPolicy {
            ratios = try ratioPolicy.ratios(
                round: round, links: clients.map { pool.link(of: $0) }, elements: model.parameterCount)
        }
        return try zip(clients, ratios).map { c, ratio in
            let codec = try ratio.map { try channel.make(tensors: tensors, ratio: $0) } ?? uplinkCodec!
            return UplinkPlan(
                codec: codec, feedback: channel.feedback,
                context: CodecContext(
                    seed: config.seed, stream: "client/\(c)/round/\(round)/uplink", key: "client/\(c)/uplink"),
                ratio: ratio)
        }
    }

    /// Runs `round` (the one after the last) with the clients of `pool`. The row's `virtualTime` is
    /// the round's own duration; evaluation fields are left empty.
    public func runRound(_ round: Int, pool: any ClientPool) throws -> RoundMetrics {
        precondition(round == self.round + 1, "rounds run in order: expected \(self.round + 1), got \(round)")
        let k = config.clientsPerRound
        let count = model.parameterCount
        let selected = selection(round: round)
        let active = pool.available(selected, round: round)

        // Broadcast: the dense global model, or the compressed change of it, plus the strategy's vectors.
        let vectors = strategy.broadcast(parameterCount: count)
        let extraDown = vectors.values.reduce(0) { $0 + IdentityCodec.size(count: $1.count) }
        var downloadBytes: [Int: Int] = [:]
        if let broadcast {
            _ = try broadcast.send(round: round, global: UnsafeBufferPointer(model.parameters.values))
            for c in selected { downloadBytes[c] = broadcast.download(client: c, round: round) + extraDown }
        } else {
            for c in selected { downloadBytes[c] = IdentityCodec.size(count: count) + extraDown }
        }
        let plans = try uplinks(for: active, round: round, pool: pool)
        let tasks = zip(active, plans).map { c, plan in
            ClientTask(client: c, downloadBytes: downloadBytes[c]!, state: clientStates[c] ?? [:], uplink: plan)
        }
        let trainStart = ContinuousClock.now
        var byClient: [Int: ClientReply] = [:]
        do {  // the round's start model is a copy, released once the clients have it
            let start: [Float]
            if let broadcast {
                start = Array(broadcast.view)
                saved = nil  // the clients' copy is the broadcast's view: the saved model is not sent
            } else {
                start = takeGlobal()
            }
            let request = RoundRequest(round: round, model: start, vectors: vectors, tasks: tasks)
            for reply in try pool.train(request) where downloadBytes[reply.client] != nil {
                byClient[reply.client] = reply
            }
        }
        let trainWall = (ContinuousClock.now - trainStart).seconds
        FaultInjection.point("round-trained")
        let planOf = Dictionary(uniqueKeysWithValues: zip(active, plans))
        // One owner for each payload, released once decoded: at most one payload and the decoded
        // updates at once.
        var replies = active.compactMap { byClient.removeValue(forKey: $0) }

        // Deadline and over-selection: keep clients that finish in time, the first k of them.
        let deadline = config.deadlineSeconds
        var finishers = replies.indices.filter { deadline == nil || replies[$0].finishTime <= deadline! }
        finishers.sort { (replies[$0].finishTime, replies[$0].client) < (replies[$1].finishTime, replies[$1].client) }
        let kept = finishers.prefix(k).sorted { replies[$0].client < replies[$1].client }
        var roundTime = kept.map { replies[$0].finishTime }.max() ?? 0
        if let deadline, replies.count > kept.count || replies.count < selected.count {
            roundTime = deadline
        }

        // The receive path, for every reply that arrived (EF21 estimates advance with what the
        // clients sent); only the kept ones can be aggregated. A rejected update is dropped, never
        // aggregated; its bytes still crossed the link.
        let expectedUploads = strategy.uploads(parameterCount: count)
        var slots: [[Float]] = []
        var accepted: [Int] = []
        var coverage: [[UInt32]?] = []
        var rejected: [Int: String] = [:]
        let keptSet = Set(kept)
        for i in replies.indices {
            var slot = deltaPool.popLast() ?? [Float](repeating: 0, count: count)
            let result = Result {
                try slot.withUnsafeMutableBufferPointer {
                    try receiver.receive(
                        replies[i], plan: planOf[replies[i].client]!, uploads: expectedUploads, into: $0)
                }
            }
            replies[i].payload = []
            if keptSet.contains(i), case .success(let covered) = result {
                accepted.append(i)
                slots.append(slot)
                coverage.append(covered)
            } else {
                recycle(slot)
                switch result {
                case .failure(let error): rejected[replies[i].client] = "\(error)"
                case .success: rejected[replies[i].client] = "late: past the deadline or after the first \(k) to finish"
                }
            }
        }
        let bytesUp = kept.reduce(0) { $0 + replies[$1].uploadBytes }
        if config.compression.aggregation == .opwa && !accepted.isEmpty {
            // OPWA: rescale each coordinate so the strategy's sample-weighted mean averages it only
            // over the clients whose payload contained it.
            let scales = try SparseAggregation.overlapScales(
                kept: coverage, weights: accepted.map { Double(replies[$0].sampleCount) }, count: count)
            for s in slots.indices {
                slots[s].withUnsafeMutableBufferPointer { d in
                    for j in 0..<d.count { d[j] *= scales[j] }
                }
            }
        }
        var updates: [ClientUpdate] = []
        var lossSum = 0.0
        var sampleSum = 0
        for (s, i) in accepted.enumerated() {
            let r = replies[i]
            updates.append(
                ClientUpdate(
                    clientID: r.client, delta: slots[s], sampleCount: r.sampleCount, localSteps: r.steps,
                    vectors: r.upload, trainLoss: r.trainLoss, payloadBytes: r.uploadBytes))
            lossSum += r.trainLoss * Double(r.sampleCount)
            sampleSum += r.sampleCount
        }
        self.round = round
        var row = RoundMetrics(
            round: round, virtualTime: roundTime, wallTime: 0, bytesUp: bytesUp,
            bytesDown: downloadBytes.values.reduce(0, +),
            trainLoss: sampleSum > 0 ? lossSum / Double(sampleSum) : nil, testLoss: nil, testAccuracy: nil,
            selected: selected.count, completed: updates.count, dropped: selected.count - updates.count, skipped: nil,
            trainWallTime: trainWall, clientComputeTime: replies.map(\.computeSeconds).reduce(0, +))
        defer {
            // Hand the buffers back once nothing else holds them, so the next round reuses their pages.
            updates = []
            for slot in slots { recycle(slot) }
        }
        for i in accepted where !replies[i].state.isEmpty { clientStates[replies[i].client] = replies[i].state }
        pool.finished(round: round, accepted: accepted.map { replies[$0].client }, rejected: rejected)
        guard updates.count >= config.minCompleted else {
            row.skipped =
                "only \(updates.count) of \(selected.count) clients completed; min_completed is \(config.minCompleted)"
            return row
        }
        try strategy.aggregate(
            global: model.parameters.values, updates: updates,
            context: AggregationContext(round: round, totalClients: config.partition.clients))
        return row
    }
}

extension RoundEngine {
    /// Saves the server's side of the run: the round, the global model, the strategy's state, the
    /// per-client rule state, the EF21 estimates, the compressed broadcast, and the shared uplink
    /// codec's memory (PowerSGD's warm starts).
    ///
    /// The saved copy of the global model is also the next round's start model (one copy, not
    /// two): change the model's weights between a save and the next round only through
    /// ``restore(from:)``.
    public func save(into checkpoint: inout Checkpoint) {
        checkpoint.values["engine/round"] = String(round)
        let global = saved.flatMap { $0.round == round ? $0.values : nil } ?? Array(model.parameters.values)
        saved = (round, global)
        checkpoint.vectors["engine/global"] = global
        for (name, v) in strategy.state { checkpoint.vectors["strategy/" + name] = v }
        for (client, state) in clientStates {
            for (name, v) in state { checkpoint.vectors["client_state/\(client)/\(name)"] = v }
        }
        for (client, g) in receiver.estimates.estimates { checkpoint.vectors["ef21/\(client)"] = g }
        broadcast?.save(into: &checkpoint)
        if let power = uplinkCodec?.codec as? PowerSGDCodec {
            for (key, q) in power.savedWarmStarts { checkpoint.vectors["powersgd/" + key] = q }
        }
    }

    /// Restores what ``save(into:)`` saved, into an engine built from the same experiment that has
    /// run no round yet.
    /// - Throws: ``CheckpointError`` for anything missing or of the wrong size.
    public func restore(from checkpoint: Checkpoint) throws {
        precondition(round == 0, "restore into a fresh engine")
        guard let saved = Int(try checkpoint.value("engine/round")), saved >= 0 else {
            throw CheckpointError("the checkpoint's round is not a number")
        }
        let count = model.parameterCount
        let global = try checkpoint.vector("engine/global", count: count)
        do {
            try strategy.restore(state: checkpoint.vectors(under: "strategy/"), parameterCount: count)
        } catch {
            throw CheckpointError("the checkpoint's strategy state does not fit: \(error)")
        }
        var states: [Int: [String: [Float]]] = [:]
        for (key, v) in checkpoint.vectors(under: "client_state/") {
            let parts = key.split(separator: "/", maxSplits: 1)
            guard parts.count == 2, let client = Int(parts[0]), (0..<config.partition.clients).contains(client) else {
                throw CheckpointError("the checkpoint's client state '\(key)' names no client of this experiment")
            }
            states[client, default: [:]][String(parts[1])] = v
        }
        var estimates = EF21Server(count: count)
        for (key, g) in checkpoint.vectors(under: "ef21/") {
            guard let client = Int(key), (0..<config.partition.clients).contains(client) else {
                throw CheckpointError("the checkpoint's EF21 estimate '\(key)' names no client of this experiment")
            }
            do {
                try estimates.restore(client: client, estimate: g)
            } catch {
                throw CheckpointError("the checkpoint's EF21 estimate of client \(client) does not fit: \(error)")
            }
        }
        try broadcast?.restore(from: checkpoint)
        if let power = uplinkCodec?.codec as? PowerSGDCodec {
            power.restore(warmStarts: checkpoint.vectors(under: "powersgd/"))
        }
        _ = model.parameters.values.update(fromContentsOf: global)
        self.saved = nil
        clientStates = states
        receiver.estimates = estimates
        round = saved
    }
}
