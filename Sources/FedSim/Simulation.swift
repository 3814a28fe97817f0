import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation

/// A federated experiment on virtual clients: the round engine with the simulator's client pool
/// (partitioned data, heterogeneous devices, training spread over worker threads) and the
/// virtual clock that adds up the rounds' durations.
///
/// ```swift
/// let config = try ExperimentConfig.load(path: "experiments/fmnist-fedavg-flower.yaml")
/// let sim = try Simulation(config: config, data: try FashionMNIST.load())
/// let metrics = try sim.run { row in print(row.round, row.testAccuracy ?? 0) }
/// ```
public final class Simulation {
    public let config: ExperimentConfig
    public let engine: RoundEngine
    public let clients: SimulatedClients
    private let test: LabeledDataset
    /// Virtual seconds since the run began.
    public private(set) var virtualTime = 0.0

    /// The global model; its parameters are the server's weights.
    public var model: Model { engine.model }
    public var strategy: any Strategy { engine.strategy }
    public var partition: Partition { clients.partition }
    public var devices: [ClientDevice] { clients.devices }

    public init(config: ExperimentConfig, data: (train: LabeledDataset, test: LabeledDataset)) throws {
        self.config = config
        test =
            config.evaluation.samples.map { data.test.subset(indices: Array(0..<min($0, data.test.count))) }
            ?? data.test
        engine = try RoundEngine(config: config, model: try ModelZoo.make(config.model, seed: config.seed))
        clients = try SimulatedClients(config: config, train: data.train, algorithm: engine.strategy.clientAlgorithm)
    }

    /// The rounds run so far (restored ones included), and their `metrics.jsonl` / `metrics.csv` lines.
    public private(set) var rows: [RoundMetrics] = []
    public private(set) var jsonLines: [String] = []
    public private(set) var csvLines: [String] = []
    /// Wall seconds of the rounds run before a restore.
    private var restoredWallTime = 0.0

    /// The last round run.
    public var round: Int { engine.round }

    /// Runs the rounds after the last one run up to `config.rounds`, calling `onRound` after each.
    /// With `checkpoint`, writes a checkpoint there every `config.checkpointEvery` rounds and after
    /// the last. After each round `shouldStop` is asked; if it says so, the run writes its
    /// checkpoint and returns early (``round`` then tells how far it got).
    /// - Returns: every row, restored ones included.
    @discardableResult
    public func run(
        checkpoint path: String? = nil, shouldStop: () -> Bool = { false }, onRound: (RoundMetrics) -> Void = { _ in }
    ) throws -> [RoundMetrics] {
        let clock = ContinuousClock()
        let start = clock.now
        while engine.round < config.rounds {
            let round = engine.round + 1
            var row = try engine.runRound(round, pool: clients)
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
            row.wallTime = restoredWallTime + (clock.now - start).seconds
            rows.append(row)
            jsonLines.append(row.jsonLine)
            csvLines.append(row.csvLine)
            onRound(row)
            FaultInjection.point("round-end")
            let stop = shouldStop()
            if let path, stop || isLast || round % config.checkpointEvery == 0 {
                try saveCheckpoint().write(to: path)
            }
            if stop { break }
        }
        return rows
    }

    /// Everything the run needs to continue: the engine's and the clients' state, the virtual
    /// clock, the metrics so far, and the experiment's fingerprint.
    public func saveCheckpoint() -> Checkpoint {
        var checkpoint = Checkpoint()
        checkpoint.values["experiment"] = config.fingerprint
        checkpoint.values["simulation/virtual_time"] = "\(virtualTime)"
        checkpoint.values["simulation/wall_time"] = "\(rows.last?.wallTime ?? 0)"
        checkpoint.values["simulation/rounds_planned"] = "\(config.rounds)"
        checkpoint.values["metrics.jsonl"] = jsonLines.joined(separator: "\n")
        checkpoint.values["metrics.csv"] = csvLines.joined(separator: "\n")
        engine.save(into: &checkpoint)
        clients.save(into: &checkpoint)
        return checkpoint
    }

    /// Continues the run `checkpoint` was saved from; the simulation must be new (no round run)
    /// and built from the same experiment (``ExperimentConfig/fingerprint``).
    /// - Throws: ``CheckpointError`` naming the settings that differ, or what is missing or corrupt.
    public func restore(from checkpoint: Checkpoint) throws {
        precondition(engine.round == 0, "restore into a new simulation")
        let theirs = try checkpoint.value("experiment")
        guard theirs == config.fingerprint else {
            let mine = Set(config.fingerprint.split(separator: "\n"))
            let differing = theirs.split(separator: "\n").filter { !mine.contains($0) }.prefix(5)
            throw CheckpointError(
                "the checkpoint is from another experiment or other settings; it has: "
                    + differing.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; "))
        }
        guard let virtual = Double(try checkpoint.value("simulation/virtual_time")),
            let wall = Double(try checkpoint.value("simulation/wall_time"))
        else { throw CheckpointError("the checkpoint's clock values are not numbers") }
        let json = try checkpoint.value("metrics.jsonl").split(separator: "\n").map(String.init)
        let csv = try checkpoint.value("metrics.csv").split(separator: "\n").map(String.init)
        let restoredRows = try RunHistory.parse(jsonl: json.joined(separator: "\n"), source: "the checkpoint")
        try engine.restore(from: checkpoint)
        guard restoredRows.count == engine.round, csv.count == engine.round else {
            throw CheckpointError(
                "the checkpoint holds \(restoredRows.count) metrics rows for \(engine.round) rounds")
        }
        try clients.restore(from: checkpoint, parameterCount: model.parameterCount)
        virtualTime = virtual
        restoredWallTime = wall
        rows = restoredRows
        jsonLines = json
        csvLines = csv
    }

    /// Accuracy and loss of the global model on the test set (see ``SimulatedClients/evaluate(_:on:)``).
    public func evaluate() throws -> PassStatistics {
        try clients.evaluate(UnsafeBufferPointer(model.parameters.values), on: test)
    }
}
