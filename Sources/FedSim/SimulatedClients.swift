import Dispatch
import FedCompress
import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Synchronization

/// The simulator's client pool: every client's data partition and device, their local updates run
/// on worker threads, and a virtual clock. A client's finish time is its device's round time for
/// the real payload sizes (download, compute per sample processed, upload, latency); dropouts
/// come from a seeded stream per round and client.
///
/// The clients' own memory (error-feedback residuals, EF21 estimates, DGC momenta) lives here, as
/// it would on the devices.
public final class SimulatedClients: ClientPool {
    public let config: ExperimentConfig
    public let partition: Partition
    public let devices: [ClientDevice]
    let train: LabeledDataset
    let workers: [LocalUpdate]
    /// The client side of the strategy, whose rules the clients run.
    let algorithm: any ClientAlgorithm
    private let evaluator: ParallelEvaluator
    /// Error-feedback memory of the clients that have sent a compressed update.
    private(set) var memories: [Int: ErrorFeedbackState] = [:]

    /// The pool for `config`'s clients over `train`, with `strategy`'s client rules.
    public init(config: ExperimentConfig, train: LabeledDataset, algorithm: any ClientAlgorithm) throws {
        self.config = config
        self.train = train
        self.algorithm = algorithm
        partition = try Partitioner.split(
            labels: train.labels, classes: train.classCount, clients: config.partition.clients,
            scheme: config.partition.partitionScheme, seed: config.seed)
        devices = try DeviceProfiles.make(clients: config.partition.clients, devices: config.devices, seed: config.seed)
        workers = try (0..<config.workers).map { _ in
            try LocalUpdate(model: config.model, seed: config.seed, training: config.local)
        }
        evaluator = ParallelEvaluator(replicas: workers.map(\.model))
    }

    /// Each selected client fails with the configured dropout probability, or its trace's
    /// unavailability, from the stream `dropout/round/<r>/client/<c>`.
    public func available(_ selected: [Int], round: Int) -> [Int] {
        selected.filter { c in
            var r = SeededRNG(seed: config.seed, stream: "dropout/round/\(round)/client/\(c)")
            return r.nextUniform() >= Float(config.dropout) && r.nextUniform() < Float(devices[c].availability)
        }
    }

    public func link(of client: Int) -> ClientLink {
        ClientLink(bandwidth: devices[client].uplinkKbps * 1000, latency: devices[client].latencyMs / 1000)
    }

    /// Trains the tasks' clients concurrently on the workers. Workers take the largest remaining
    /// client first (longest-processing-time order), which keeps the last worker from finishing
    /// long after the others; which worker trains a client does not change its result.
    public func train(_ request: RoundRequest) throws -> [ClientReply] {
        let tasks = request.tasks
        for task in tasks where task.uplink != nil && memories[task.client] == nil {
            memories[task.client] = ErrorFeedbackState()
        }
        let sizes = tasks.map { partition.clientIndices[$0.client].count }
        let queue = tasks.indices.sorted { (sizes[$0], tasks[$1].client) > (sizes[$1], tasks[$0].client) }
        let box = ResultBox(count: tasks.count)
        let next = Atomic<Int>(0)
        let (config, train, workers, indices) = (self.config, self.train, self.workers, self.partition.clientIndices)
        let algorithm = self.algorithm
        // Each memory is used by the one worker that trains its client.
        nonisolated(unsafe) let memories = tasks.map { self.memories[$0.client] }
        request.model.withUnsafeBufferPointer { start in
            nonisolated(unsafe) let start = start
            DispatchQueue.concurrentPerform(iterations: min(workers.count, max(tasks.count, 1))) { w in
                while true {
                    let position = next.add(1, ordering: .relaxed).oldValue
                    guard position < queue.count else { break }
                    let i = queue[position]
                    let task = tasks[i]
                    box.set(i) {
                        let rule = algorithm.makeRule(broadcast: request.vectors, state: task.state)
                        // One thread per client: its result must not depend on any thread setting.
                        return try ComputeThreads.withThreads(1) {
                            try workers[w].run(
                                client: task.client, round: request.round, indices: indices[task.client],
                                data: train, start: start, seed: config.seed, rule: rule, uplink: task.uplink,
                                memory: memories[i])
                        }
                    }
                }
            }
        }
        var replies = try box.results()
        for (i, task) in tasks.enumerated() {
            replies[i].finishTime = devices[task.client].roundSeconds(
                downloadBytes: task.downloadBytes, uploadBytes: replies[i].uploadBytes,
                samplesProcessed: replies[i].samplesProcessed)
        }
        return replies
    }

    /// Accuracy and loss of `model` on `test`, on the workers' replicas (``ParallelEvaluator``).
    public func evaluate(_ model: UnsafeBufferPointer<Float>, on test: LabeledDataset) throws -> PassStatistics {
        try evaluator.evaluate(model, on: test, batchSize: config.evaluation.batchSize)
    }
}

extension SimulatedClients {
    /// Saves the clients' own memory under `memory/<client>/`.
    func save(into checkpoint: inout Checkpoint) {
        for (client, m) in memories {
            for (name, v) in [("residual", m.residual), ("estimate", m.estimate), ("velocity", m.velocity)]
            where !v.isEmpty {
                checkpoint.vectors["memory/\(client)/\(name)"] = v
            }
        }
    }

    /// Restores what ``save(into:)`` saved.
    func restore(from checkpoint: Checkpoint, parameterCount: Int) throws {
        var saved: [Int: [String: [Float]]] = [:]
        for (key, v) in checkpoint.vectors(under: "memory/") {
            let parts = key.split(separator: "/")
            guard parts.count == 2, let client = Int(parts[0]), (0..<config.partition.clients).contains(client),
                ["residual", "estimate", "velocity"].contains(parts[1])
            else {
                throw CheckpointError(
                    "the checkpoint's client memory 'memory/\(key)' names no client of this experiment")
            }
            guard v.count == parameterCount else {
                throw CheckpointError(
                    "the checkpoint's 'memory/\(key)' has \(v.count) values, expected \(parameterCount)")
            }
            saved[client, default: [:]][String(parts[1])] = v
        }
        memories = saved.mapValues {
            ErrorFeedbackState(
                residual: $0["residual"] ?? [], estimate: $0["estimate"] ?? [], velocity: $0["velocity"] ?? [])
        }
    }
}

/// Results written by worker threads at distinct indices.
private final class ResultBox: @unchecked Sendable {
    private var slots: [Result<ClientReply, any Error>?]
    private let lock = Mutex(())

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ work: () throws -> ClientReply) {
        let r = Result { try work() }
        lock.withLock { _ in slots[i] = r }
    }

    func results() throws -> [ClientReply] { try slots.map { try $0!.get() } }
}
