import FedCore
import FedData
import FedEngine
import FedNN
import FedSim
import FedTensor
import FedTestSupport
import Foundation
import GRPCCore
import GRPCInProcessTransport
import Testing

@testable import FedNet

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

    /// Runs `config` with a coordinator and one session per client over an in-process transport
    /// (the clients of the experiment's partition of `data.train` unless given), from `resume`'s
    /// checkpoint when given; returns the final checkpoint too.
    static func network(
        _ config: ExperimentConfig, clients given: [FederatedClient]? = nil, resume: Checkpoint? = nil
    ) async throws -> (model: [Float], rows: [RoundMetrics], checkpoint: Checkpoint) {
        let transport = InProcessTransport()
        let coordinator = try Coordinator(config: config, test: data.test)
        if let resume { try coordinator.restore(from: resume) }
        let server = GRPCServer(transport: transport.server, services: [coordinator.service])
        let clients =
            try given
            ?? (0..<config.partition.clients).map {
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
        return (Array(coordinator.engine.model.parameters.values), rows, coordinator.saveCheckpoint())
    }

    /// The coordinator writes a round's checkpoint while the next round trains, so a restarted
    /// one may repeat two rounds its clients already trained: the clients go back to their
    /// memory from before the first of them, and the run is still the simulator's.
    @Test func aRestartTwoRoundsBackRepeatsThemFromTheClientsEarlierMemory() async throws {
        var config = try Self.config(
            "strategy: {name: scaffold}\ncompression: {uplink: {codec: topk, ratio: 0.1, error_feedback: residual}}")
        config.clientsPerRound = config.partition.clients
        func rounds(_ n: Int) -> ExperimentConfig {
            var c = config
            c.rounds = n
            return c
        }
        let clients = try (0..<config.partition.clients).map {
            try FederatedClient(config: config, index: $0, train: Self.data.train)
        }
        let first = try await Self.network(rounds(1), clients: clients)
        _ = try await Self.network(rounds(3), clients: clients, resume: first.checkpoint)  // trains 2 and 3
        let (model, rows, _) = try await Self.network(rounds(4), clients: clients, resume: first.checkpoint)
        let sim = try Simulation(config: rounds(4), data: Self.data)
        let expected = try sim.run()
        #expect(rows.map(\.round) == [2, 3, 4])
        for (a, b) in zip(rows, expected.dropFirst()) {
            #expect(a.trainLoss == b.trainLoss && a.testAccuracy == b.testAccuracy, "round \(a.round)")
        }
        let same = model.map(\.bitPattern) == sim.model.parameters.values.map(\.bitPattern)
        #expect(same, "the run repeated from two rounds back differs from the simulator's")
    }

    @Test(arguments: [
        "strategy: {name: fedavg}",
        "strategy: {name: scaffold}",
        "strategy: {name: feddyn, alpha: 0.1}",
        "strategy: {name: fedimpro, cut: net.2, privacy_noise: 0.01}",
        "compression: {uplink: {codec: topk, ratio: 0.1, error_feedback: residual}}",
    ])
    func networkRoundsAreTheSimulatorsRounds(_ settings: String) async throws {
        let config = try Self.config(settings)
        let (model, rows, _) = try await Self.network(config)
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

    /// Client 0 trains on IDX files of its own (`fedswift join --images --labels`): the run is the
    /// one where it holds the same samples in memory, and its update counts with its file's size.
    @Test func aClientTrainsOnADataFileOfItsOwn() async throws {
        let config = try Self.config()
        let dir = try TemporaryDirectory()
        let count = 37
        var rng = SeededRNG(seed: 4)
        let pixels = (0..<(count * 28 * 28)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let labels = (0..<count).map { _ in UInt8(rng.next() % 10) }
        func idx(_ dims: [Int], _ bytes: [UInt8]) -> Data {
            var out: [UInt8] = [0, 0, 8, UInt8(dims.count)]
            for d in dims { out += withUnsafeBytes(of: UInt32(d).bigEndian, Array.init) }
            return Data(out + bytes)
        }
        try idx([count, 28, 28], pixels).write(to: URL(fileURLWithPath: dir.file("images.idx")))
        try idx([count], labels).write(to: URL(fileURLWithPath: dir.file("labels.idx")))
        let own = try FashionMNIST.loadSplit(imagesPath: dir.file("images.idx"), labelsPath: dir.file("labels.idx"))
        let memory = try LabeledDataset(
            images: Tensor(shape: Shape([count, 1, 28, 28]), scalars: pixels.map { Float($0) / 255 }),
            labels: labels.map(Int32.init), classCount: 10)
        func clients(_ data: LabeledDataset) throws -> [FederatedClient] {
            let workers = try TrainingWorkers(config: config, threads: 1)
            return try [
                FederatedClient(config: config, index: 0, data: data, indices: Array(0..<count), workers: workers)
            ]
                + FederatedClient.clients(
                    1..<config.partition.clients, config: config, train: Self.data.train, threads: 1)
        }
        let fromFile = try await Self.network(config, clients: try clients(own))
        let inMemory = try await Self.network(config, clients: try clients(memory))
        #expect(fromFile.model.map(\.bitPattern) == inMemory.model.map(\.bitPattern))
        let partitioned = try await Self.network(config)
        #expect(fromFile.model != partitioned.model, "client 0 trained on its file, not its partition")
    }
}
