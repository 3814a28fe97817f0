import Dispatch
import FedCompress
import FedCore
import FedData
import FedNN
import FedTensor
import Foundation
import Synchronization

/// A federated experiment run on virtual clients: partitioned data, heterogeneous devices on a
/// virtual clock, client training spread over worker threads, a server strategy.
///
/// ```swift
/// let config = try ExperimentConfig.load(path: "experiments/fmnist-fedavg-flower.yaml")
/// let sim = try Simulation(config: config, data: try FashionMNIST.load())
/// let metrics = try sim.run { row in print(row.round, row.testAccuracy ?? 0) }
/// ```
public final class Simulation {
    public let config: ExperimentConfig
    public let partition: Partition
    public let devices: [ClientDevice]
    /// The global model; its parameters are the server's weights.
    public let model: Model
    public let strategy: any Strategy
    private let train: LabeledDataset
    private let test: LabeledDataset
    private let workers: [ClientWorker]
    /// SCAFFOLD's per-client control variates, kept only for clients that have trained.
    private var clientControls: [Int: [Float]] = [:]
    private var globalPayload: [UInt8] = []
    /// Server-side buffers for received updates, recycled every round.
    private var deltaPool: [[Float]] = []
    /// The model's tensors, for per-tensor codecs.
    private let tensors: [TensorwiseCodec.Tensor]
    /// The uplink codec when every client uses the same one (no ratio policy); shared so that
    /// stateful codecs (PowerSGD's warm starts, keyed by client and tensor) keep their state.
    let uplinkCodec: TensorwiseCodec?
    private let ratioPolicy: (any RatioPolicy)?
    /// Per-client compression memory (error feedback), for clients that have trained.
    private var memories: [Int: ClientMemory] = [:]
    let broadcast: Broadcast?

    public init(config: ExperimentConfig, data: (train: LabeledDataset, test: LabeledDataset)) throws {
        self.config = config
        train = data.train
        test =
            config.evaluation.samples.map { data.test.subset(indices: Array(0..<min($0, data.test.count))) }
            ?? data.test
        let scheme: PartitionScheme
        switch config.partition.scheme {
        case "dirichlet": scheme = .dirichlet(alpha: config.partition.alpha, minSize: config.partition.minSize)
        case "shards": scheme = .shards(perClient: config.partition.shardsPerClient)
        case "quantity": scheme = .quantitySkew(sigma: config.partition.sigma)
        default: scheme = .iid
        }
        partition = try Partitioner.split(
            labels: train.labels, classes: train.classCount, clients: config.partition.clients, scheme: scheme,
            seed: config.seed)
        devices = try DeviceProfiles.make(clients: config.partition.clients, devices: config.devices, seed: config.seed)
        model = try ModelZoo.make(config.model, seed: config.seed)
        do {
            strategy = try StrategyFactory.makeStrategy(
                name: config.strategy,
                parameters: config.strategyParameters.filter { $0.key != "mu" || config.strategy == "fedprox" })
        } catch {
            throw ConfigError(key: "strategy", "\(error)")
        }
        workers = try (0..<config.workers).map { _ in try ClientWorker(config: config) }
        let layout = model.parameters.entries.map { TensorwiseCodec.Tensor(name: $0.name, shape: $0.shape.dims) }
        let initial = UnsafeBufferPointer(model.parameters.values)
        tensors = layout
        ratioPolicy = config.compression.ratioPolicy?.make()
        uplinkCodec = try config.compression.uplink.map { try $0.make(tensors: layout) }
        broadcast = try config.compression.downlink.map {
            Broadcast(
                codec: try $0.make(tensors: layout), feedback: $0.feedback, initial: initial,
                clients: config.partition.clients, seed: config.seed)
        }
    }

    /// Compression memories of the clients that have trained, in client order.
    var clientsWithMemory: [ClientMemory] { memories.keys.sorted().map { memories[$0]! } }

    /// How each of `clients` sends its update this round (nil entries: dense float32).
    func uplinks(for clients: [Int], round: Int) throws -> [Uplink?] {
        guard let channel = config.compression.uplink else { return clients.map { _ in nil } }
        var ratios: [Double?] = clients.map { _ in nil }
        if let ratioPolicy {
            let links = clients.map {
                ClientLink(bandwidth: devices[$0].uplinkKbps * 1000, latency: devices[$0].latencyMs / 1000)
            }
            ratios = try ratioPolicy.ratios(round: round, links: links, elements: model.parameterCount)
        }
        return try zip(clients, ratios).map { c, ratio in
            let memory = memories[c] ?? ClientMemory()
            memories[c] = memory
            let codec = try ratio.map { try channel.make(tensors: tensors, ratio: $0) } ?? uplinkCodec!
            return Uplink(
                codec: codec, feedback: channel.feedback, memory: memory,
                context: CodecContext(
                    seed: config.seed, stream: "client/\(c)/round/\(round)/uplink", key: "client/\(c)/uplink"),
                reportsCoverage: config.compression.aggregation == "opwa")
        }
    }

    private func rule(for client: Int) -> any ClientRule {
        switch strategy {
        case let prox as FedProx: return ProximalClientRule(mu: Float(prox.mu))
        case let scaffold as Scaffold:
            let count = model.parameterCount
            return ScaffoldClientRule(
                serverControl: scaffold.state["control"] ?? [Float](repeating: 0, count: count),
                clientControl: clientControls[client] ?? [Float](repeating: 0, count: count))
        default: return PlainClientRule()
        }
    }

    /// Runs every round, calling `onRound` after each. Returns all rows.
    public func run(onRound: (RoundMetrics) -> Void = { _ in }) throws -> [RoundMetrics] {
        let clock = ContinuousClock()
        let start = clock.now
        var rows: [RoundMetrics] = []
        var virtualTime = 0.0
        for round in 1...config.rounds {
            var row = try runRound(round)
            virtualTime += row.virtualTime
            row.virtualTime = virtualTime
            let isLast = round == config.rounds
            if row.skipped == nil && (round % config.evaluation.every == 0 || isLast)
                || (isLast && row.testAccuracy == nil)
            {
                let stats = try evaluate()
                row.testAccuracy = stats.accuracy
                row.testLoss = stats.loss
                row.evalWallTime = stats.seconds
            }
            row.wallTime = (clock.now - start).seconds
            rows.append(row)
            onRound(row)
        }
        return rows
    }

    /// Accuracy and loss of the global model on the test set. The workers take interleaved batches,
    /// each on one thread, and the batch sums are added in batch order, so the result does not
    /// depend on the number of workers.
    public func evaluate() throws -> PassStatistics {
        let start = ContinuousClock.now
        let (workers, test, batchSize) = (self.workers, self.test, config.evaluation.batchSize)
        nonisolated(unsafe) let global = UnsafeBufferPointer(model.parameters.values)
        let parts = Mutex<[[(batch: Int, loss: Double, correct: Int)]]>([])
        let failure = Mutex<(any Error)?>(nil)
        DispatchQueue.concurrentPerform(iterations: workers.count) { w in
            do {
                let mine = try ComputeThreads.withThreads(1) {
                    try workers[w].evaluate(
                        global: global, data: test, batchSize: batchSize, first: w, stride: workers.count)
                }
                parts.withLock { $0.append(mine) }
            } catch {
                failure.withLock { $0 = error }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        let batches = parts.withLock { $0 }.flatMap { $0 }.sorted { $0.batch < $1.batch }
        var loss = 0.0
        var correct = 0
        for b in batches {
            loss += b.loss
            correct += b.correct
        }
        let count = max(test.count, 1)
        return PassStatistics(
            loss: loss / Double(count), accuracy: Double(correct) / Double(count), samples: test.count,
            seconds: (ContinuousClock.now - start).seconds)
    }

    /// One round; `virtualTime` of the result is the round's own duration.
    func runRound(_ round: Int) throws -> RoundMetrics {
        let k = config.clientsPerRound
        let clients = config.partition.clients
        let m = min(clients, Int((Double(k) * (1 + config.overSelection)).rounded(.up)))
        var selectRNG = SeededRNG(seed: config.seed, stream: "select/round/\(round)")
        var pool = Array(0..<clients)
        for i in 0..<m { pool.swapAt(i, i + selectRNG.nextInt(below: clients - i)) }
        let selected = pool[0..<m].sorted()

        // Dropouts: each selected client fails with the configured probability (or its trace availability).
        var active: [Int] = []
        for c in selected {
            var r = SeededRNG(seed: config.seed, stream: "dropout/round/\(round)/client/\(c)")
            let keep = r.nextUniform() >= Float(config.dropout) && r.nextUniform() < Float(devices[c].availability)
            if keep { active.append(c) }
        }

        // Broadcast: the dense global model, or the compressed change of it (plus SCAFFOLD's server control).
        let extraDown = strategy is Scaffold ? DensePayload.size(count: model.parameterCount) : 0
        var downloadBytes: [Int: Int] = [:]
        if let broadcast {
            _ = try broadcast.send(round: round, global: UnsafeBufferPointer(model.parameters.values))
            for c in selected { downloadBytes[c] = broadcast.download(client: c, round: round) + extraDown }
        } else {
            DensePayload.encode(UnsafeBufferPointer(model.parameters.values), into: &globalPayload)
            for c in selected { downloadBytes[c] = globalPayload.count + extraDown }
        }

        let trainStart = ContinuousClock.now
        var slots = (0..<active.count).map { _ in
            deltaPool.popLast() ?? [Float](repeating: 0, count: model.parameterCount)
        }
        let results = try trainClients(
            active, round: round, uplinks: try uplinks(for: active, round: round), into: &slots)
        let trainWall = (ContinuousClock.now - trainStart).seconds
        var times: [(time: Double, index: Int)] = []
        for (i, r) in results.enumerated() {
            let t = devices[r.clientID].roundSeconds(
                downloadBytes: downloadBytes[r.clientID]!, uploadBytes: r.payloadBytes,
                samplesProcessed: r.samplesProcessed)
            times.append((t, i))
        }
        // Deadline and over-selection: keep clients that finish in time, the first k of them.
        var finishers = times.filter { config.deadlineSeconds == nil || $0.time <= config.deadlineSeconds! }
        finishers.sort { ($0.time, results[$0.index].clientID) < ($1.time, results[$1.index].clientID) }
        let kept = finishers.prefix(k).map(\.index).sorted { results[$0].clientID < results[$1].clientID }
        let stragglers = results.count - kept.count
        var roundTime = kept.map { times[$0].time }.max() ?? 0
        if let deadline = config.deadlineSeconds, stragglers > 0 || active.count < selected.count {
            roundTime = deadline
        }

        // A corrupt or non-finite update is dropped, never aggregated; its bytes still crossed the link.
        let bytesUp = kept.reduce(0) { $0 + results[$1].payloadBytes }
        let accepted = kept.filter { results[$0].rejection == nil }
        if config.compression.aggregation == "opwa" && !accepted.isEmpty {
            // OPWA: rescale each coordinate so the strategy's sample-weighted mean averages it only
            // over the clients whose payload contained it.
            let scales = try SparseAggregation.overlapScales(
                kept: accepted.map { results[$0].coverage }, weights: accepted.map { Double(results[$0].sampleCount) },
                count: model.parameterCount)
            for i in accepted {
                slots[i].withUnsafeMutableBufferPointer { d in
                    for j in 0..<d.count { d[j] *= scales[j] }
                }
            }
        }
        var updates: [ClientUpdate] = []
        var lossSum = 0.0
        var sampleSum = 0
        for i in accepted {
            let r = results[i]
            if let c = r.newClientControl { clientControls[r.clientID] = c }
            updates.append(
                ClientUpdate(
                    clientID: r.clientID, delta: slots[i], sampleCount: r.sampleCount, localSteps: r.steps,
                    controlDelta: r.controlDelta, trainLoss: r.trainLoss, payloadBytes: r.payloadBytes))
            lossSum += r.trainLoss * Double(r.sampleCount)
            sampleSum += r.sampleCount
        }
        var row = RoundMetrics(
            round: round, virtualTime: roundTime, wallTime: 0, bytesUp: bytesUp,
            bytesDown: downloadBytes.values.reduce(0, +),
            trainLoss: sampleSum > 0 ? lossSum / Double(sampleSum) : nil, testLoss: nil, testAccuracy: nil,
            selected: selected.count, completed: updates.count, dropped: selected.count - updates.count, skipped: nil,
            trainWallTime: trainWall, clientComputeTime: results.map(\.computeSeconds).reduce(0, +))
        defer {
            // Hand the buffers back once nothing else holds them, so the next round reuses their pages.
            updates = []
            deltaPool += slots
        }
        guard updates.count >= config.minCompleted else {
            row.skipped =
                "only \(updates.count) of \(selected.count) clients completed; min_completed is \(config.minCompleted)"
            return row
        }
        try strategy.aggregate(
            global: model.parameters.values, updates: updates,
            context: ServerContext(round: round, totalClients: clients))
        return row
    }

    /// Trains `clients` concurrently on the workers; results come back by position. Workers take
    /// the largest remaining client first (longest-processing-time order), which keeps the last
    /// worker from finishing long after the others; which worker trains a client does not change
    /// its result.
    private func trainClients(
        _ clients: [Int], round: Int, uplinks: [Uplink?], into slots: inout [[Float]]
    ) throws -> [ClientResult] {
        let rules = clients.map { rule(for: $0) }
        let sizes = clients.map { self.partition.clientIndices[$0].count }
        let queue = clients.indices.sorted { (sizes[$0], clients[$1]) > (sizes[$1], clients[$0]) }
        // Clients start from the model they hold: the broadcast copy under downlink compression.
        let global = broadcast?.view ?? model.parameters.values
        let box = ResultBox(count: clients.count)
        let next = Atomic<Int>(0)
        let (config, train, workers, partition) = (self.config, self.train, self.workers, self.partition)
        nonisolated(unsafe) let sharedRules = rules
        nonisolated(unsafe) let sharedGlobal = UnsafeBufferPointer(global)
        // Each client writes only its own slot. The slot arrays are uniquely owned and not resized
        // while the workers run, so their storage stays where these pointers point.
        var pointers: [UnsafeMutableBufferPointer<Float>] = []
        for i in slots.indices { pointers.append(slots[i].withUnsafeMutableBufferPointer { $0 }) }
        nonisolated(unsafe) let receive = pointers
        DispatchQueue.concurrentPerform(iterations: min(workers.count, max(clients.count, 1))) { w in
            while true {
                let position = next.add(1, ordering: .relaxed).oldValue
                guard position < queue.count else { break }
                let i = queue[position]
                let c = clients[i]
                box.set(i) {
                    // One thread per client: its result must not depend on any thread setting.
                    try ComputeThreads.withThreads(1) {
                        try workers[w].train(
                            client: c, indices: partition.clientIndices[c], data: train, global: sharedGlobal,
                            config: config, round: round, rule: sharedRules[i], uplink: uplinks[i], received: receive[i]
                        )
                    }
                }
            }
        }
        return try box.results()
    }
}

/// Results written by worker threads at distinct indices.
private final class ResultBox: @unchecked Sendable {
    private var slots: [Result<ClientResult, any Error>?]
    private let lock = Mutex(())

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ work: () throws -> ClientResult) {
        let r = Result { try work() }
        lock.withLock { _ in slots[i] = r }
    }

    func results() throws -> [ClientResult] { try slots.map { try $0!.get() } }
}
