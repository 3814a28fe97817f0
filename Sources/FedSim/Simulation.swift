import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor

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
        clients = try SimulatedClients(config: config, train: data.train, strategy: engine.strategy)
    }

    /// Runs every round, calling `onRound` after each. Returns all rows.
    public func run(onRound: (RoundMetrics) -> Void = { _ in }) throws -> [RoundMetrics] {
        let clock = ContinuousClock()
        let start = clock.now
        var rows: [RoundMetrics] = []
        for round in (engine.round + 1)...config.rounds {
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
            row.wallTime = (clock.now - start).seconds
            rows.append(row)
            onRound(row)
        }
        return rows
    }

    /// Accuracy and loss of the global model on the test set (see ``SimulatedClients/evaluate(_:on:)``).
    public func evaluate() throws -> PassStatistics {
        try clients.evaluate(UnsafeBufferPointer(model.parameters.values), on: test)
    }
}
