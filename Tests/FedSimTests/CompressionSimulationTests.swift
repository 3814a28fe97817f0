import FedCompress
import FedCore
import FedData
import FedNN
import FedTensor
import Foundation
import Testing

@testable import FedEngine
@testable import FedSim

extension Simulation {
    /// Error-feedback memories of the clients that have sent a compressed update, in client order.
    var clientsWithMemory: [ErrorFeedbackState] { clients.memories.keys.sorted().map { clients.memories[$0]! } }

    func uplinks(for clients: [Int], round: Int) throws -> [UplinkPlan?] {
        try engine.uplinks(for: clients, round: round, pool: self.clients)
    }
}

/// The `compression:` section wired into the simulator, on the small synthetic set with the `mlp`.
@Suite(.serialized) struct CompressionSimulationTests {
    static let data = SimulationTests.data

    func config(_ extra: [String] = []) throws -> ExperimentConfig {
        try SimulationTests().config(extra)
    }

    func run(_ extra: [String] = []) throws -> (Simulation, [RoundMetrics]) {
        let sim = try Simulation(config: try config(extra), data: Self.data)
        return (sim, try sim.run())
    }

    /// Size of a tensorwise payload of a codec whose size depends only on the element counts.
    func payloadSize(_ codec: String, _ sim: Simulation, parameters: [String: Double] = [:]) throws -> Int {
        let layout = sim.model.parameters.entries.map { TensorwiseCodec.Tensor(name: $0.name, shape: $0.shape.dims) }
        let c = try TensorwiseCodec(tensors: layout, codec: try Codecs.make(name: codec, parameters: parameters))
        return try c.encode([Float](repeating: 0.25, count: sim.model.parameterCount)).count
    }

    @Test func losslessUplinkCodecGivesTheDenseRunsModelAndItsOwnPayloadSize() throws {
        let (dense, denseRows) = try run()
        let (sim, rows) = try run(["compression.uplink.codec=identity"])
        #expect(sim.model.parameters.flatValues == dense.model.parameters.flatValues)
        let size = try payloadSize("identity", sim)
        for (r, d) in zip(rows, denseRows) {
            #expect(r.bytesUp == 4 * size)
            #expect(r.bytesDown == d.bytesDown)
            #expect(r.testAccuracy == d.testAccuracy)
        }
        // Top-K keeping everything, with error feedback, is lossless too.
        let (all, _) = try run([
            "compression.uplink.codec=topk", "compression.uplink.ratio=1", "compression.uplink.error_feedback=residual",
        ])
        #expect(all.model.parameters.flatValues == dense.model.parameters.flatValues)
    }

    @Test func topKWithErrorFeedbackIsSmallDeterministicAndStillLearns() throws {
        let settings = [
            "compression.uplink.codec=topk", "compression.uplink.ratio=0.05",
            "compression.uplink.error_feedback=residual",
            "compression.uplink.min_tensor_elements=100", "rounds=6",
        ]
        let (a, ra) = try run(settings)
        let (b, rb) = try run(settings + ["workers=1"])
        #expect(ra == rb)
        #expect(a.model.parameters.flatValues == b.model.parameters.flatValues)
        let dense = 4 * (IdentityCodec.size(count: a.model.parameterCount))
        for r in ra {
            #expect(r.completed == 4)
            // 5 % of the values with their indices, plus the biases (210 floats) uncompressed.
            #expect(r.bytesUp < dense / 8 && r.bytesUp > dense / 40)
        }
        #expect(ra.last!.testAccuracy! > 0.3)
        #expect(ra.last!.trainLoss! < ra.first!.trainLoss!)
        // Every client that trained keeps a residual; its size is the model's.
        let memories = a.clientsWithMemory
        #expect(!memories.isEmpty)
        #expect(memories.allSatisfy { $0.residual.count == a.model.parameterCount })
        // Without error feedback the run differs and keeps no residuals.
        let (c, rc) = try run(
            Array(settings.dropFirst(3)) + ["compression.uplink.codec=topk", "compression.uplink.ratio=0.05"])
        #expect(rc != ra)
        #expect(c.clientsWithMemory.allSatisfy { $0.residual.isEmpty })
    }

    @Test func opwaEqualsPlainAveragingForDenseCodecsAndDiffersForSparseOnes() throws {
        let (plain, rp) = try run(["compression.uplink.codec=fp16"])
        let (opwa, ro) = try run(["compression.uplink.codec=fp16", "compression.aggregation=opwa"])
        #expect(rp == ro)
        #expect(plain.model.parameters.flatValues == opwa.model.parameters.flatValues)
        let sparse = ["compression.uplink.codec=topk", "compression.uplink.ratio=0.02", "rounds=1"]
        let (sp, _) = try run(sparse)
        let (so, _) = try run(sparse + ["compression.aggregation=opwa"])
        // Same payloads, so the same coordinates move; OPWA moves each by at least as much (its
        // weights over the clients that sent a coordinate sum to 1, plain averaging's to less).
        let start = try ModelZoo.make("mlp", seed: 3).parameters.flatValues
        let dp = zip(sp.model.parameters.flatValues, start).map { $0 - $1 }
        let dop = zip(so.model.parameters.flatValues, start).map { $0 - $1 }
        var larger = 0
        for (p, o) in zip(dp, dop) {
            #expect((p == 0) == (o == 0))
            #expect(abs(o) >= abs(p) * (1 - 1e-5))
            if abs(o) > abs(p) * 1.01 { larger += 1 }
        }
        #expect(larger > 0)
    }

    @Test func bcrsGivesFasterLinksLargerRatiosThatEqualiseUploadTimes() throws {
        let cfg = try config([
            "compression.uplink.codec=topk", "compression.ratio_policy.name=bcrs",
            "compression.ratio_policy.ratio=0.01",
            "compression.ratio_policy.min_ratio=0.001", "compression.ratio_policy.max_ratio=0.5",
            "devices.uplink_kbps={distribution: lognormal, median: 5000, sigma: 1, min: 1000, max: 100000}",
            "devices.latency_ms=0",
        ])
        let sim = try Simulation(config: cfg, data: Self.data)
        let clients = [0, 3, 5, 9]
        let uplinks = try sim.uplinks(for: clients, round: 1)
        let bandwidth = clients.map { sim.devices[$0].uplinkKbps * 1000 }
        let ratios = uplinks.map { u -> Double in
            guard let t = u?.codec as? TensorwiseCodec, let topk = t.codec as? TopKCodec,
                case .ratio(let r) = topk.budget
            else {
                Issue.record("expected a tensorwise Top-K codec")
                return 0
            }
            return r
        }
        // T = 0.01·S·64 / B_min; r_i = T·B_i/(S·64) = 0.01·B_i/B_min, clamped to [0.001, 0.5].
        let slowest = bandwidth.min()!
        for (r, b) in zip(ratios, bandwidth) {
            #expect(abs(r - min(0.5, 0.01 * b / slowest)) < 1e-12)
        }
        #expect(Set(ratios).count > 1)
        // The run itself completes with the per-client codecs.
        let rows = try sim.run()
        #expect(rows.allSatisfy { $0.completed == 4 })
    }

    func ratios(_ sim: Simulation, clients: [Int], round: Int) throws -> [Double] {
        try sim.uplinks(for: clients, round: round).map { u in
            guard let t = u?.codec as? TensorwiseCodec, let topk = t.codec as? TopKCodec,
                case .ratio(let r) = topk.budget
            else {
                throw CodecError(.invalidParameter, "expected a tensorwise Top-K codec")
            }
            return r
        }
    }

    @Test func dgcWarmupAndAdaTopKRatiosReachTheClientsCodecs() throws {
        let warm = try Simulation(
            config: try config([
                "compression.uplink.codec=topk", "compression.ratio_policy.name=dgc_warmup",
                "compression.ratio_policy.ratio=0.001", "compression.ratio_policy.warmup_rounds=3",
            ]), data: Self.data)
        for (round, expected) in [(1, pow(0.001, 1.0 / 3)), (2, pow(0.001, 2.0 / 3)), (3, 0.001), (9, 0.001)] {
            for r in try ratios(warm, clients: [1, 2], round: round) { #expect(abs(r - expected) < 1e-12) }
        }
        // AdaTopK: the dense upload is 32·S bits over 8 Mbit/s plus 0.1 s latency; a target of a
        // quarter of that compresses every client to τ / t.
        let ada = try Simulation(
            config: try config([
                "compression.uplink.codec=topk", "compression.ratio_policy.name=adatopk",
                "compression.ratio_policy.target_time_s=0.05", "compression.ratio_policy.min_ratio=0.01",
            ]), data: Self.data)
        let t = 0.1 + 32.0 * Double(ada.model.parameterCount) / 8_000_000
        for r in try ratios(ada, clients: [0, 7], round: 1) { #expect(abs(r - 0.05 / t) < 1e-12) }
        let rows = try ada.run()
        #expect(rows.allSatisfy { $0.completed == 4 })
    }

    @Test func powerSGDWarmStartsOncePerClientAndTensorAcrossRounds() throws {
        let (sim, rows) = try run([
            "compression.uplink.codec=powersgd", "compression.uplink.rank=2",
            "compression.uplink.error_feedback=residual", "rounds=4",
        ])
        let power = try #require(sim.engine.uplinkCodec?.codec as? PowerSGDCodec)
        // The mlp has three weight matrices; each client that trained has one warm start per matrix.
        #expect(power.warmStartCount == 3 * sim.clientsWithMemory.count)
        let size = rows[0].bytesUp
        #expect(size < 4 * (IdentityCodec.size(count: sim.model.parameterCount)) / 10)
        #expect(rows.last!.trainLoss! < rows.first!.trainLoss!)
    }

    @Test func ef21AndDGCRunDeterministically() throws {
        for scheme in ["ef21", "dgc"] {
            let s = [
                "compression.uplink.codec=topk", "compression.uplink.ratio=0.05",
                "compression.uplink.error_feedback=\(scheme)",
            ]
            let (a, ra) = try run(s)
            let (_, rb) = try run(s + ["workers=1"])
            #expect(ra == rb, "\(scheme)")
            #expect(ra.allSatisfy { $0.completed == 4 && $0.trainLoss!.isFinite }, "\(scheme)")
            if scheme == "ef21" {
                // The server's copy of each estimate equals the client's own.
                for (c, m) in a.clients.memories {
                    #expect(a.engine.receiver.estimates.estimate(of: c) == m.estimate)
                }
            }
        }
    }

    @Test func compressedBroadcastCountsCatchUpBytesAndKeepsTheResidual() throws {
        let (sim, rows) = try run([
            "compression.downlink.codec=fp16", "compression.downlink.error_feedback=residual", "rounds=4",
        ])
        let half = try payloadSize("fp16", sim)
        let dense = IdentityCodec.size(count: sim.model.parameterCount)
        // Round 1: every selected client holds the initial model and downloads one broadcast.
        #expect(rows[0].bytesDown == 4 * half)
        // Later: a client downloads the broadcasts it missed, capped at the dense model.
        for r in rows.dropFirst() {
            #expect(r.bytesDown >= 4 * half && r.bytesDown <= 4 * dense)
        }
        // The clients' copy plus the server's residual is the server's model as of the last broadcast
        // (the model before the last round's aggregation).
        let b = try #require(sim.engine.broadcast)
        #expect(b.state.residual.count == sim.model.parameterCount)
        #expect(rows.last!.trainLoss! < rows.first!.trainLoss!)
        let (dense1, _) = try run(["rounds=4"])
        #expect(sim.model.parameters.flatValues != dense1.model.parameters.flatValues)
    }

    @Test func broadcastResidualMakesTheClientsCopyTrackTheModel() throws {
        let layout = [TensorwiseCodec.Tensor(name: "w", shape: [4, 5])]
        let codec = try TensorwiseCodec(tensors: layout, codec: TopKCodec(ratio: 0.2))
        var x = [Float](repeating: 0, count: 20)
        let b = x.withUnsafeBufferPointer {
            Broadcast(codec: codec, feedback: .residual, initial: $0, clients: 3, seed: 1)
        }
        var rng = SeededRNG(seed: 5)
        var total = 0
        for round in 1...6 {
            for j in 0..<20 { x[j] += rng.nextNormal() }
            total += try x.withUnsafeBufferPointer { try b.send(round: round, global: $0) }
            // x̂ = x − e exactly up to rounding.
            for j in 0..<20 { #expect(abs(b.view[j] + b.state.residual[j] - x[j]) < 1e-5) }
        }
        // Client 0 catches up on six broadcasts, or takes the dense model if that is smaller.
        #expect(b.download(client: 0, round: 6) == min(total, IdentityCodec.size(count: 20)))
        #expect(b.download(client: 0, round: 6) == 0)
    }

    @Test func nonFiniteUpdatesAreRejectedNotAggregated() throws {
        // lr 100 makes local training blow up: those clients' updates are dropped, with or without
        // a codec (fp16 also overflows to infinity above 65,504), and the model stays finite.
        for extra in [
            [], ["compression.uplink.codec=fp16"],
            ["compression.uplink.codec=topk", "compression.uplink.error_feedback=residual"],
        ] {
            let (sim, rows) = try run(["local.lr=100", "rounds=2"] + extra)
            #expect(rows.contains { $0.dropped > 0 }, "\(extra)")
            #expect(sim.model.parameters.flatValues.allSatisfy { $0.isFinite }, "\(extra)")
            #expect(sim.clientsWithMemory.allSatisfy { $0.residual.allSatisfy { $0.isFinite } })
        }
    }

    @Test(arguments: [
        ("compression: {uplink: {codec: zip}}", "compression.uplink.codec", "topk"),
        ("compression: {uplink: {codec: topk, ratio: 2}}", "compression.uplink.codec", "ratio"),
        ("compression: {uplink: {codec: topk, levels: 3}}", "compression.uplink.codec", "allowed: ratio"),
        (
            "compression: {uplink: {codec: topk, error_feedback: magic}}", "compression.uplink.error_feedback",
            "residual"
        ),
        (
            "compression: {downlink: {codec: fp16, error_feedback: ef21}}", "compression.downlink.error_feedback",
            "none, residual"
        ),
        ("compression: {uplink: {codec: powersgd, per_tensor: false}}", "compression.uplink.per_tensor", "shapes"),
        ("compression: {uplink: {codec: qsgd}, ratio_policy: {name: bcrs}}", "compression.ratio_policy", "'ratio'"),
        (
            "compression: {uplink: {codec: topk}, ratio_policy: {name: adatopk}}",
            "compression.ratio_policy.target_time_s", "target"
        ),
        (
            "compression: {uplink: {codec: topk}, ratio_policy: {name: bcrs, ratio: 0.5, max_ratio: 0.1}}",
            "compression.ratio_policy.ratio", "outside"
        ),
        ("compression: {aggregation: mean}", "compression.aggregation", "plain, opwa"),
        ("compression: {uplnk: {codec: topk}}", "compression.uplnk", "unknown key"),
    ])
    func badCompressionSettingsNameTheKey(_ line: String, _ key: String, _ hint: String) {
        let yaml = """
            rounds: 2
            model: mlp
            partition: {clients: 10}
            clients_per_round: 2
            \(line)
            """
        #expect {
            _ = try ExperimentConfig.parse(yaml: yaml)
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.key == key && e.description.contains(hint)
        }
    }

    @Test func resolvedConfigRoundTripsTheCompressionSection() throws {
        let cfg = try config([
            "compression.uplink.codec=topk", "compression.uplink.ratio=0.01", "compression.uplink.error_feedback=dgc",
            "compression.uplink.momentum=0.8", "compression.ratio_policy.name=bcrs", "compression.aggregation=opwa",
            "compression.downlink.codec=qsgd", "compression.downlink.s=16",
        ])
        let again = try ExperimentConfig.parse(yaml: cfg.yaml())
        #expect(again.compression.uplink?.codec == "topk")
        #expect(again.compression.uplink?.feedback == .dgc(momentum: 0.8))
        #expect(again.compression.uplink?.parameters == ["ratio": 0.01])
        #expect(again.compression.downlink?.parameters == ["s": 16])
        #expect(again.compression.ratioPolicy?.name == .bcrs && again.compression.ratioPolicy?.ratio == 0.01)
        #expect(again.compression.aggregation == .opwa)
    }
}
