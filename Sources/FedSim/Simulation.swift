import Dispatch
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

    public init(config: ExperimentConfig, data: (train: LabeledDataset, test: LabeledDataset)) throws {
        self.config = config
        train = data.train
        test = config.evaluation.samples.map { data.test.subset(indices: Array(0..<min($0, data.test.count))) } ?? data.test
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
                name: config.strategy, parameters: config.strategyParameters.filter { $0.key != "mu" || config.strategy == "fedprox" })
        } catch {
            throw ConfigError(key: "strategy", "\(error)")
        }
        workers = try (0..<config.workers).map { _ in try ClientWorker(config: config) }
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
            if row.skipped == nil && (round % config.evaluation.every == 0 || isLast) || (isLast && row.testAccuracy == nil) {
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

    /// Accuracy and loss of the global model on the test set, using every worker's core.
    public func evaluate() throws -> PassStatistics {
        try ComputeThreads.withThreads(config.workers) {
            try Trainer.evaluate(model, on: test, batchSize: config.evaluation.batchSize)
        }
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

        // Broadcast: the dense global model (plus SCAFFOLD's server control).
        let extraDown = strategy is Scaffold ? DensePayload.size(count: model.parameterCount) : 0
        DensePayload.encode(UnsafeBufferPointer(model.parameters.values), into: &globalPayload)
        let downloadBytes = globalPayload.count + extraDown

        let trainStart = ContinuousClock.now
        var slots = (0..<active.count).map { _ in
            deltaPool.popLast() ?? [Float](repeating: 0, count: model.parameterCount)
        }
        let results = try trainClients(active, round: round, into: &slots)
        let trainWall = (ContinuousClock.now - trainStart).seconds
        var times: [(time: Double, index: Int)] = []
        for (i, r) in results.enumerated() {
            let t = devices[r.clientID].roundSeconds(
                downloadBytes: downloadBytes, uploadBytes: r.payloadBytes, samplesProcessed: r.samplesProcessed)
            times.append((t, i))
        }
        // Deadline and over-selection: keep clients that finish in time, the first k of them.
        var finishers = times.filter { config.deadlineSeconds == nil || $0.time <= config.deadlineSeconds! }
        finishers.sort { ($0.time, results[$0.index].clientID) < ($1.time, results[$1.index].clientID) }
        let kept = finishers.prefix(k).map(\.index).sorted { results[$0].clientID < results[$1].clientID }
        let stragglers = results.count - kept.count
        var roundTime = kept.map { times[$0].time }.max() ?? 0
        if let deadline = config.deadlineSeconds, stragglers > 0 || active.count < selected.count { roundTime = deadline }

        var updates: [ClientUpdate] = []
        var bytesUp = 0
        var lossSum = 0.0
        var sampleSum = 0
        var rejected = 0
        for i in kept {
            let r = results[i]
            // A corrupt or non-finite update is dropped, never aggregated; its bytes still crossed the link.
            bytesUp += r.payloadBytes
            guard r.rejection == nil else {
                rejected += 1
                continue
            }
            if let c = r.newClientControl { clientControls[r.clientID] = c }
            updates.append(
                ClientUpdate(
                    clientID: r.clientID, delta: slots[i], sampleCount: r.sampleCount, localSteps: r.steps,
                    controlDelta: r.controlDelta, trainLoss: r.trainLoss, payloadBytes: r.payloadBytes))
            lossSum += r.trainLoss * Double(r.sampleCount)
            sampleSum += r.sampleCount
        }
        var row = RoundMetrics(
            round: round, virtualTime: roundTime, wallTime: 0, bytesUp: bytesUp, bytesDown: downloadBytes * selected.count,
            trainLoss: sampleSum > 0 ? lossSum / Double(sampleSum) : nil, testLoss: nil, testAccuracy: nil,
            selected: selected.count, completed: updates.count, dropped: selected.count - updates.count, skipped: nil,
            trainWallTime: trainWall, clientComputeTime: results.map(\.computeSeconds).reduce(0, +))
        defer {
            // Hand the buffers back once nothing else holds them, so the next round reuses their pages.
            updates = []
            deltaPool += slots
        }
        guard updates.count >= config.minCompleted else {
            row.skipped = "only \(updates.count) of \(selected.count) clients completed; min_completed is \(config.minCompleted)"
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
    private func trainClients(_ clients: [Int], round: Int, into slots: inout [[Float]]) throws -> [ClientResult] {
        let rules = clients.map { rule(for: $0) }
        let sizes = clients.map { self.partition.clientIndices[$0].count }
        let queue = clients.indices.sorted { (sizes[$0], clients[$1]) > (sizes[$1], clients[$0]) }
        let global = model.parameters.values
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
                            config: config, round: round, rule: sharedRules[i], received: receive[i])
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
