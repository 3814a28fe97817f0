import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation

/// A federated run over the network: the round engine with the connected clients as its pool.
/// ``service`` is what a gRPC server serves; ``run(minimumClients:timeout:onRound:)`` waits for
/// clients and runs the experiment's rounds (on a thread of its own, since the engine blocks while
/// a round's clients train).
public final class Coordinator: @unchecked Sendable {
    public let config: ExperimentConfig
    public let engine: RoundEngine
    public let clients: NetworkClients
    public let service: CoordinatorService
    let test: LabeledDataset?

    public init(config: ExperimentConfig, test: LabeledDataset? = nil, tokens: [Int: String]? = nil) throws {
        self.config = config
        self.test = test.map { t in
            config.evaluation.samples.map { t.subset(indices: Array(0..<min($0, t.count))) } ?? t
        }
        engine = try RoundEngine(config: config, model: try ModelZoo.make(config.model, seed: config.seed))
        clients = NetworkClients(config: config, parameterCount: engine.model.parameterCount)
        service = CoordinatorService(
            clients: clients, tokens: tokens,
            runID: "\(config.name)-\(String(UInt64.random(in: .min ... .max), radix: 16))")
    }

    /// Waits up to `timeout` seconds for `minimumClients` to connect, then runs every round; the
    /// test set (if any) is evaluated as in the simulator. Row times are real seconds.
    public func run(
        minimumClients: Int, timeout: Double = 60, onRound: @escaping @Sendable (RoundMetrics) -> Void = { _ in }
    ) async throws -> [RoundMetrics] {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try self.runRounds(minimumClients, timeout, onRound) })
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func runRounds(
        _ minimumClients: Int, _ timeout: Double, _ onRound: (RoundMetrics) -> Void
    ) throws -> [RoundMetrics] {
        let connected = clients.waitForClients(minimumClients, timeout: timeout)
        guard connected >= minimumClients else {
            throw WireError("only \(connected) of the \(minimumClients) clients needed connected within \(timeout) s")
        }
        let clock = ContinuousClock()
        let start = clock.now
        var rows: [RoundMetrics] = []
        var elapsed = 0.0
        while engine.round < config.rounds {
            let round = engine.round + 1
            var row = try engine.runRound(round, pool: clients)
            elapsed += row.virtualTime
            row.virtualTime = elapsed
            let isLast = round == config.rounds
            if let test, row.skipped == nil && (round % config.evaluation.every == 0 || isLast) {
                let stats = try ComputeThreads.withThreads(1) {
                    try Trainer.evaluate(engine.model, on: test, batchSize: config.evaluation.batchSize)
                }
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
}
