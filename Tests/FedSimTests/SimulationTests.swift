import FedCompress
import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import FedTestSupport
import Foundation
import Testing

@testable import FedSim

/// The simulator on a small synthetic 28×28 dataset with the `mlp`, so each run takes well under a second.
@Suite(.serialized) struct SimulationTests {
    static let data: (train: LabeledDataset, test: LabeledDataset) = (
        SyntheticDataset.make(count: 600, classes: 10, channels: 1, height: 28, width: 28, seed: 1, noise: 0.8),
        SyntheticDataset.make(count: 200, classes: 10, channels: 1, height: 28, width: 28, seed: 1, noise: 0.8)
    )

    func config(_ extra: [String] = []) throws -> ExperimentConfig {
        try ExperimentConfig.parse(
            yaml: """
                name: test
                seed: 3
                rounds: 3
                workers: 2
                model: mlp
                partition: {scheme: dirichlet, clients: 12, alpha: 0.5, min_size: 5}
                clients_per_round: 4
                local: {epochs: 1, batch_size: 16, lr: 0.05}
                devices:
                  compute_ms_per_sample: 2
                  uplink_kbps: 8000
                  downlink_kbps: 16000
                  latency_ms: 100
                """, overrides: extra)
    }

    func run(_ extra: [String] = []) throws -> (Simulation, [RoundMetrics]) {
        let sim = try Simulation(config: try config(extra), data: Self.data)
        return (sim, try sim.run())
    }

    @Test func sameSeedGivesIdenticalMetricsAndModelWhateverTheWorkerCount() throws {
        let (a, ra) = try run()
        let (b, rb) = try run()
        let (c, rc) = try run(["workers=1"])
        #expect(ra == rb)
        #expect(ra == rc)
        #expect(ra.map(\.jsonLine.count).count == 3)
        #expect(a.model.parameters.flatValues == b.model.parameters.flatValues)
        #expect(a.model.parameters.flatValues == c.model.parameters.flatValues)
        let (_, other) = try run(["seed=4"])
        #expect(other != ra)
    }

    /// The same with convolutions (on oneDNN: per-worker primitives, odd last batches in
    /// power-of-two sub-batches; `make test` also runs this forced to OpenBLAS).
    @Test func convolutionalModelGivesIdenticalMetricsWhateverTheWorkerCount() throws {
        let cnn = ["model=lenet5", "rounds=2", "local.batch_size=12"]
        let (a, ra) = try run(cnn)
        let (b, rb) = try run(cnn + ["workers=1"])
        #expect(ra == rb)
        #expect(a.model.parameters.flatValues == b.model.parameters.flatValues)
        #expect(ra.last?.trainLoss.map { $0.isFinite && $0 > 0 } == true)
    }

    @Test func learnsAndCountsRealPayloadBytes() throws {
        let (sim, rows) = try run(["rounds=6"])
        let payload = IdentityCodec.size(count: sim.model.parameterCount)
        for r in rows {
            #expect(r.selected == 4 && r.completed == 4 && r.dropped == 0)
            #expect(r.bytesDown == 4 * payload)
            #expect(r.bytesUp == 4 * payload)
            #expect(r.testAccuracy != nil)
        }
        #expect(rows.last!.testAccuracy! > 0.5)
        #expect(rows.last!.trainLoss! < rows.first!.trainLoss!)
    }

    @Test func virtualTimeIsTheSlowestClientsRoundTime() throws {
        let (sim, rows) = try run(["rounds=1"])
        let payload = Double(IdentityCodec.size(count: sim.model.parameterCount))
        // Constant devices: the slowest client is the one that processed the most samples.
        var rng = SeededRNG(seed: 3, stream: "select/round/1")
        var pool = Array(0..<12)
        for i in 0..<4 { pool.swapAt(i, i + rng.nextInt(below: 12 - i)) }
        let most = pool[0..<4].map { sim.partition.clientIndices[$0].count }.max()!
        let expected = payload * 8 / 16_000_000 + Double(most) * 0.002 + payload * 8 / 8_000_000 + 0.1
        #expect(abs(rows[0].virtualTime - expected) < 1e-9)
    }

    @Test func deadlineMakesStragglersAndSkipsTheRound() throws {
        let (sim, rows) = try run(["deadline_s=0.05"])
        let before = try ModelZoo.make("mlp", seed: 3).parameters.flatValues
        for (i, r) in rows.enumerated() {
            #expect(r.completed == 0 && r.dropped == 4)
            #expect(r.skipped?.contains("min_completed") == true)
            #expect(abs(r.virtualTime - 0.05 * Double(i + 1)) < 1e-12)
        }
        #expect(sim.model.parameters.flatValues == before)
    }

    @Test func dropoutRemovesClientsAndTheRoundGoesOn() throws {
        let (_, rows) = try run(["dropout=0.5", "rounds=6"])
        #expect(rows.allSatisfy { $0.completed + $0.dropped == $0.selected })
        #expect(rows.map(\.dropped).reduce(0, +) > 0)
        #expect(rows.contains { $0.completed > 0 && $0.skipped == nil })
    }

    @Test func overSelectionKeepsTheFirstFinishers() throws {
        let (_, rows) = try run([
            "over_selection=0.5", "devices.compute_ms_per_sample={distribution: lognormal, median: 2, sigma: 1}",
        ])
        for r in rows {
            #expect(r.selected == 6)
            #expect(r.completed == 4)
            #expect(r.dropped == 2)
        }
    }

    @Test(arguments: [
        "fedavgm", "fedprox", "scaffold", "fednova", "feddyn", "fedimpro", "fedadam", "fedyogi", "fedadagrad",
    ])
    func everyStrategyRunsAndImproves(_ name: String) throws {
        var extra = ["strategy.name=\(name)", "rounds=4"]
        if ["fedadam", "fedyogi"].contains(name) { extra.append("strategy.server_learning_rate=0.01") }
        if name == "fedimpro" { extra.append("strategy.cut=net.2") }
        let (sim, rows) = try run(extra)
        #expect(rows.allSatisfy { $0.completed == 4 })
        let finite = sim.model.parameters.flatValues.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(rows.last!.testAccuracy! > 0.2, "\(name): accuracy \(rows.last!.testAccuracy!)")
        if name == "scaffold" {
            // Server control and client controls double the payloads.
            let payload = IdentityCodec.size(count: sim.model.parameterCount)
            #expect(rows[0].bytesUp == 4 * 2 * payload)
            #expect(sim.strategy.state["control"]?.count == sim.model.parameterCount)
        }
        if name == "fedimpro" {
            // Each upload carries the client's per-class statistics of the 200 features after net.1:
            // 2 × 10 × 200 values; the server keeps their average.
            let payload = IdentityCodec.size(count: sim.model.parameterCount)
            #expect(rows[0].bytesUp == 4 * (payload + 2 * IdentityCodec.size(count: 2_000)))
            #expect(sim.strategy.state["feature_mean"]?.count == 2_000)
        }
        if name == "feddyn" {
            // Nothing extra travels; the server keeps h.
            #expect(rows[0].bytesUp == 4 * IdentityCodec.size(count: sim.model.parameterCount))
            #expect(sim.strategy.state["h"]?.count == sim.model.parameterCount)
        }
    }
}

@Suite struct ReportTests {
    @Test func metricsFilesRoundTripAndTimeToTargetIsTheFirstCrossing() throws {
        let temporary = try TemporaryDirectory(prefix: "fedswift-report")
        let dir = temporary.file("run")
        let config = try ExperimentConfig.parse(
            yaml: "name: r\nrounds: 3\nmodel: mlp\npartition: {clients: 4}\nclients_per_round: 2\nworkers: 1")
        let out = try RunDirectory(path: dir, config: config)
        let rows = [
            RoundMetrics(
                round: 1, virtualTime: 10, wallTime: 1, bytesUp: 100, bytesDown: 200, trainLoss: 2, testLoss: 1.5,
                testAccuracy: 0.5, selected: 2, completed: 2, dropped: 0, skipped: nil),
            RoundMetrics(
                round: 2, virtualTime: 25, wallTime: 2, bytesUp: 100, bytesDown: 200, trainLoss: nil, testLoss: nil,
                testAccuracy: nil, selected: 2, completed: 0, dropped: 2, skipped: "only 0 of 2 \"clients\""),
            RoundMetrics(
                round: 3, virtualTime: 40, wallTime: 3, bytesUp: 50, bytesDown: 200, trainLoss: 1, testLoss: 0.9,
                testAccuracy: 0.75, selected: 2, completed: 1, dropped: 1, skipped: nil),
        ]
        for r in rows { out.append(r) }
        let history = try RunHistory.load(directory: dir)
        #expect(history.rows == rows)
        let t = try #require(history.timeToTarget(0.7))
        #expect(t.round == 3 && t.virtualTime == 40 && t.wallTime == 3 && t.bytes == 850)
        #expect(history.timeToTarget(0.8) == nil)
        let html = Report.html(runs: [history], target: 0.7)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg").count == 4)
        #expect(html.contains("<td>3</td><td>40.0</td>"))
        #expect(!html.contains("<script"))
        let again = try ExperimentConfig.load(path: dir + "/config.yaml")
        let resolved = config.yaml()
        #expect(again.yaml() == resolved)
        #expect(throws: ConfigError.self) { try RunHistory.load(directory: "/nonexistent/run") }
    }

    /// A diverged run's NaN or infinite loss is written as JSON null (JSON has neither), so its
    /// metrics file stays readable by every JSON parser and by `fedswift report`.
    @Test func nonFiniteLossesAreNullInJSON() throws {
        let row = RoundMetrics(
            round: 4, virtualTime: 1, wallTime: 1, bytesUp: 1, bytesDown: 1, trainLoss: .infinity, testLoss: .nan,
            testAccuracy: 0.1, selected: 2, completed: 2, dropped: 0, skipped: nil)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(row.jsonLine.utf8)) as? [String: Any])
        #expect(object["test_loss"] is NSNull && object["train_loss"] is NSNull)
        #expect((object["test_accuracy"] as? Double) == 0.1)
        let back = try #require(RoundMetrics(jsonLine: row.jsonLine))
        #expect(back.testLoss == nil && back.trainLoss == nil && back.testAccuracy == 0.1)
    }
}
