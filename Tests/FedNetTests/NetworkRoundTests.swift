import FedCore
import FedData
import FedEngine
import FedNN
import FedNet
import FedSim
import FedTensor
import Foundation
import GRPCCore
import GRPCInProcessTransport
import Testing

/// Rounds over gRPC (the in-process transport) between a coordinator and real client sessions:
/// with deterministic clients and no deadline they are the simulator's rounds, bit for bit.
@Suite(.serialized) struct NetworkRoundTests {
    static let data: (train: LabeledDataset, test: LabeledDataset) = (
        SyntheticDataset.make(count: 600, classes: 10, channels: 1, height: 28, width: 28, seed: 1, noise: 0.8),
        SyntheticDataset.make(count: 200, classes: 10, channels: 1, height: 28, width: 28, seed: 1, noise: 0.8)
    )

    static func config(_ extra: String = "") throws -> ExperimentConfig {
        try ExperimentConfig.parse(
            yaml: """
                name: net
                seed: 5
                rounds: 3
                workers: 2
                model: mlp
                partition: {scheme: dirichlet, clients: 6, alpha: 0.5, min_size: 5}
                clients_per_round: 3
                local: {steps: 4, batch_size: 16, lr: 0.05}
                \(extra)
                """)
    }

    /// Runs `config` with a coordinator and one session per client over an in-process transport.
    static func network(_ config: ExperimentConfig) async throws -> (model: [Float], rows: [RoundMetrics]) {
        let transport = InProcessTransport()
        let coordinator = try Coordinator(config: config, test: data.test)
        let server = GRPCServer(transport: transport.server, services: [coordinator.service])
        let clients = try (0..<config.partition.clients).map {
            try FederatedClient(config: config, index: $0, train: data.train)
        }
        var rows: [RoundMetrics] = []
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            // One connection, one session per client on it.
            group.addTask {
                try await withGRPCClient(transport: transport.client) { connection in
                    try await withThrowingDiscardingTaskGroup { sessions in
                        for client in clients { sessions.addTask { try await client.run(connection) } }
                    }
                }
            }
            // Generous: tests running beside this one may hold the cooperative threads the sessions need.
            rows = try await coordinator.run(minimumClients: config.partition.clients, timeout: 600)
            coordinator.clients.closeAll()
            server.beginGracefulShutdown()
        }
        return (Array(coordinator.engine.model.parameters.values), rows)
    }

    @Test(arguments: [
        "strategy: {name: fedavg}",
        "strategy: {name: scaffold}",
        "compression: {uplink: {codec: topk, ratio: 0.1, error_feedback: residual}}",
    ])
    func networkRoundsAreTheSimulatorsRounds(_ settings: String) async throws {
        let config = try Self.config(settings)
        let (model, rows) = try await Self.network(config)
        let sim = try Simulation(config: config, data: Self.data)
        let expected = try sim.run()
        #expect(rows.count == 3)
        for (a, b) in zip(rows, expected) {
            #expect(a.selected == b.selected && a.completed == b.completed, "\(settings)")
            #expect(a.bytesUp == b.bytesUp && a.bytesDown == b.bytesDown, "\(settings)")
            #expect(a.trainLoss == b.trainLoss, "\(settings)")
            #expect(a.testAccuracy == b.testAccuracy, "\(settings)")
        }
        let same = model.map(\.bitPattern) == sim.model.parameters.values.map(\.bitPattern)
        #expect(same, "\(settings): the network run's model differs from the simulator's")
    }
}
