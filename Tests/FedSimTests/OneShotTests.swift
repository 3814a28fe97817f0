import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation
import Testing

@testable import FedSim

/// One-shot FL on a small synthetic 28×28 dataset: FuseFL's stages, its server's checks, the
/// baselines, the bytes counted and the configuration's errors.
@Suite(.serialized) struct OneShotTests {
    /// 500 training and 200 test images of the same ten prototypes.
    static let data: (train: LabeledDataset, test: LabeledDataset) = {
        let all = SyntheticDataset.make(
            count: 700, classes: 10, channels: 1, height: 28, width: 28, seed: 1, noise: 0.8)
        return (all.subset(indices: Array(0..<500)), all.subset(indices: Array(500..<700)))
    }()

    func config(_ extra: [String] = []) throws -> ExperimentConfig {
        try ExperimentConfig.parse(
            yaml: """
                name: oneshot-test
                seed: 3
                workers: 2
                model: resnet
                partition: {scheme: dirichlet, clients: 3, alpha: 0.5, min_size: 5}
                local: {batch_size: 32, lr: 0.05, momentum: 0.9}
                evaluation: {batch_size: 100}
                devices: {compute_ms_per_sample: 2, uplink_kbps: 8000, downlink_kbps: 16000, latency_ms: 100}
                oneshot:
                  method: [fusefl, fedavg, ensemble, feddf]
                  epochs: 2
                  blocks: 2
                  width: 4
                  holdout: 100
                  calibration_samples: 50
                  distill: {steps: 5, batch_size: 32}
                """, overrides: extra)
    }

    @Test func everyMethodRunsAndCountsItsRealPayloads() throws {
        let sim = try OneShotSimulation(config: try config(), data: Self.data)
        // The hold-out is in no client's data, and every other image is in exactly one.
        let used = sim.partition.clientIndices.flatMap { $0 }
        #expect(used.count == 400 && Set(used).count == 400 && sim.holdout.count == 100)
        let results = try sim.run()
        #expect(results.map(\.method) == ["fusefl", "fedavg", "ensemble", "feddf"])
        // The reported accuracy is the saved model's (the ensemble's: its members').
        for r in results where r.method != "ensemble" {
            let stats = try Trainer.evaluate(sim.models[r.method]!, on: Self.data.test, batchSize: 100)
            #expect(stats.accuracy == r.accuracy && abs(stats.loss - r.loss) < 1e-9, "\(r.method)")
        }
        // The baselines upload M whole models; the ensemble delivers M − 1 to each client.
        let modelBytes = try SafeTensors.encode(try ModelZoo.make("resnet").stateDict()).count
        let byMethod = Dictionary(uniqueKeysWithValues: results.map { ($0.method, $0) })
        #expect(byMethod["fedavg"]!.bytesUp == 3 * modelBytes)
        #expect(byMethod["fedavg"]!.bytesDown == 3 * modelBytes)
        #expect(byMethod["ensemble"]!.bytesDown == 3 * 2 * modelBytes)
        #expect(byMethod["ensemble"]!.parameters == 3 * 77_754)
        // FuseFL: stage 1 uploads block 0 of width 4; stage 2 block 1 with its adaptor and the
        // classifier; every client downloads the fused block 0, then the fused block 1 for the
        // calibration statistics, then the calibrated classifier.
        let network = try ModelZoo.blocks("resnet", count: 2, width: 4)
        let stage1 = try FusedNetwork.stageModel(network, stage: 1, columns: 3, adaptor: .conv, seed: 0)
        func bytes(_ model: Model, _ prefixes: [String]) throws -> Int {
            try SafeTensors.encode(model.stateDict().filter { e in prefixes.contains { e.name.hasPrefix($0) } }).count
        }
        let stages = sim.stages.filter { $0.method == "fusefl" }
        #expect(stages.map(\.name) == ["stage 1", "stage 2", "calibration", "deliver"])
        let stage0 = try FusedNetwork.stageModel(network, stage: 0, columns: 3, adaptor: .conv, seed: 0)
        #expect(stages[0].bytesUp == 3 * (try bytes(stage0, ["blocks.0."])))
        #expect(stages[0].bytesDown == 0)
        #expect(stages[1].bytesUp == 3 * (try bytes(stage1, ["blocks.1.", "classifier."])))
        #expect(stages[1].bytesDown == 3 * (try bytes(stage1, ["blocks.0."])))
        let fused = try FusedNetwork.fusedModel(network, columns: 3, adaptor: .conv)
        #expect(stages[2].bytesDown == 3 * (try bytes(fused, ["blocks.1."])))
        #expect(stages[3].bytesDown == 3 * (try bytes(fused, ["classifier."])))
        #expect(byMethod["fusefl"]!.bytesUp == stages.reduce(0) { $0 + $1.bytesUp })
        #expect(byMethod["fusefl"]!.parameters == fused.parameterCount)
        // The same seed gives the same results, bit for bit, on one worker as on two.
        let again = try OneShotSimulation(config: try config(["workers=1"]), data: Self.data).run()
        #expect(again.map(\.accuracy) == results.map(\.accuracy))
        #expect(again.map(\.loss) == results.map(\.loss))
        #expect(byMethod["ensemble"]!.memberAccuracies.count == 3)
        #expect(again.map(\.memberAccuracies) == results.map(\.memberAccuracies))
    }

    @Test func fuseFLLearnsTheSyntheticClassesAndCalibrationChangesOnlyTheClassifier() throws {
        let fuseFL = ["oneshot.method=fusefl", "oneshot.epochs=10"]
        let calibrated = try OneShotSimulation(config: try config(fuseFL), data: Self.data)
        let plain = try OneShotSimulation(config: try config(fuseFL + ["oneshot.calibration=false"]), data: Self.data)
        let (a, b) = (try calibrated.run()[0], try plain.run()[0])
        // Well above chance (0.1); the virtual features' pass repairs the averaged classifier, which
        // never saw the summed features (0.50 against 0.24 on this data).
        #expect(a.accuracy > 0.4 && a.accuracy > b.accuracy + 0.1, "calibrated \(a.accuracy), plain \(b.accuracy)")
        let (ma, mb) = (calibrated.models["fusefl"]!, plain.models["fusefl"]!)
        for (name, t) in ma.stateDict() {
            let same = t.scalars == mb.parameters.tensor(named: name)!.scalars
            #expect(same == !name.hasPrefix("classifier."), "\(name)")
        }
    }

    /// Two FuseFL clients training one epoch a stage on `samplesEach` images each.
    func twoClients(_ setup: FuseFLSetup, samplesEach n: Int) throws -> [FuseFLClient] {
        let local = try config().local
        return try (0..<2).map {
            try FuseFLClient(
                id: $0, setup: setup, training: local, epochsPerStage: 1, data: Self.data.train,
                indices: Array(($0 * n)..<($0 * n + n)))
        }
    }

    @Test func fusedBlocksStayAsFusedWhileLaterStagesTrain() throws {
        let setup = FuseFLSetup(model: "resnet", blocks: 4, columns: 2, width: 4, adaptor: .conv, seed: 1)
        let clients = try twoClients(setup, samplesEach: 100)
        let server = try FuseFLServer(setup: setup)
        var message: [UInt8] = []
        var fusedSoFar: [(name: String, tensor: Tensor)] = []
        for s in 0..<4 {
            let uploads = try clients.map { try $0.train(stage: s, message: message) }
            // Every client's fused blocks are exactly the server's, after its training.
            for client in clients {
                let model = client.currentModel!
                for (name, t) in fusedSoFar {
                    #expect(model.parameters.tensor(named: name)!.scalars == t.scalars, "\(name)")
                }
            }
            message = try server.fuse(stage: s, uploads: uploads.map(\.payload))
            fusedSoFar += try SafeTensors.decode(message).tensors
            // Column m of the fused block is client m's block, adaptor included.
            for (m, client) in clients.enumerated() {
                for (name, t) in client.currentModel!.stateDict() where name.hasPrefix("blocks.\(s).") {
                    let column = FusedNetwork.columnName(name, block: s, column: m)!
                    #expect(server.model.parameters.tensor(named: column)!.scalars == t.scalars, "\(column)")
                }
            }
        }
        // Stages run in order, once.
        #expect(throws: ModelError.self) { try clients[0].train(stage: 2, message: []) }
        #expect(throws: ModelError.self) { try server.fuse(stage: 3, uploads: []) }
        #expect(fusedSoFar.count == server.model.stateDict().filter { !$0.name.hasPrefix("classifier.") }.count)
    }

    @Test func theServerRefusesMalformedUploadsAndChangesNothing() throws {
        let setup = FuseFLSetup(model: "resnet", blocks: 2, columns: 2, width: 4, adaptor: .mean, seed: 1)
        let clients = try twoClients(setup, samplesEach: 50)
        let server = try FuseFLServer(setup: setup)
        let good = try clients.map { try $0.train(stage: 0, message: []).payload }
        let before = server.model.parameters.flatValues
        let tensors = try SafeTensors.decode(good[1]).tensors
        var nan = tensors
        nan[0].tensor[0] = .nan
        var wrongShape = tensors
        wrongShape[0].tensor = Tensor(shape: [1], scalars: [0])
        let hostile: [(String, [UInt8])] = [
            ("garbage", [1, 2, 3]),
            ("truncated", Array(good[1].prefix(good[1].count / 2))),
            ("nan", try SafeTensors.encode(nan)),
            ("shape", try SafeTensors.encode(wrongShape)),
            ("missing", try SafeTensors.encode(Array(tensors.dropFirst()))),
            ("extra", try SafeTensors.encode(tensors + [("blocks.0.extra", Tensor(shape: [1], scalars: [1]))])),
        ]
        for (what, bytes) in hostile {
            do {
                _ = try server.fuse(stage: 0, uploads: [good[0], bytes])
                Issue.record("\(what): accepted")
            } catch let error as ModelError {
                #expect(error.message.contains("client 1"), "\(what): \(error.message)")
            } catch {
                #expect(what == "garbage" || what == "truncated", "\(what): \(error)")
            }
            #expect(server.model.parameters.flatValues == before, "\(what) changed the fused model")
        }
        // A client refuses a broken broadcast the same way, and can then take the right one.
        #expect(throws: (any Error).self) { try clients[0].train(stage: 1, message: [0, 1]) }
        #expect(throws: ModelError.self) { try server.fuse(stage: 1, uploads: good) }
        let block0 = try server.fuse(stage: 0, uploads: good)
        let last = try clients.map { try $0.train(stage: 1, message: block0).payload }
        // The last stage's uploads carry the classifier, which the server averages.
        var noClassifier = try SafeTensors.decode(last[1]).tensors
        noClassifier.removeAll { $0.name.hasPrefix("classifier.") }
        #expect(throws: ModelError.self) {
            try server.fuse(stage: 1, uploads: [last[0], try SafeTensors.encode(noClassifier)])
        }
        let block1 = try server.fuse(stage: 1, uploads: last)
        let expected = try (0..<2).map { try SafeTensors.decode(last[$0])["classifier.weight"]!.scalars }
        let averaged = server.model.parameters.tensor(named: "classifier.weight")!.scalars
        for i in averaged.indices { #expect(abs(averaged[i] - (expected[0][i] + expected[1][i]) / 2) < 1e-6) }
        // Calibration statistics: bogus moments are refused, the averaged classifier kept.
        let stats = try clients.map { try $0.calibrationStatistics(message: block1).payload }
        let moments = try SafeTensors.decode(stats[1]).tensors
        func altered(_ index: Int, _ change: (inout Tensor) -> Void) throws -> [UInt8] {
            var t = moments
            change(&t[index].tensor)
            return try SafeTensors.encode(t)
        }
        let f = 16  // the width-4 resnet's features
        let present = moments[0].tensor.scalars.firstIndex { $0 > 0 }!
        let bogus: [(String, [UInt8])] = [
            ("fractional count", try altered(0) { $0[0] = 1.5 }),
            ("huge mean", try altered(1) { $0[present * f] = 1e30 }),
            ("negative variance", try altered(2) { $0[present * f * f] = -1 }),
            ("asymmetric covariance", try altered(2) { $0[present * f * f + 1] += 5 }),
            ("missing", try SafeTensors.encode(Array(moments.dropLast()))),
        ]
        for (what, bytes) in bogus {
            #expect(throws: ModelError.self, "\(what)") {
                try server.calibrate(uploads: [stats[0], bytes], samples: 10, learningRate: 0.01, batchSize: 8)
            }
            #expect(server.model.parameters.tensor(named: "classifier.weight")!.scalars == averaged, "\(what)")
        }
        let none = try SafeTensors.encode(
            [(moments[0].name, Tensor(shape: moments[0].tensor.shape, repeating: 0))] + moments.dropFirst())
        #expect(throws: ModelError.self) {
            try server.calibrate(uploads: [none, none], samples: 10, learningRate: 0.01, batchSize: 8)
        }
        try server.calibrate(uploads: stats, samples: 10, learningRate: 0.01, batchSize: 8)
        #expect(server.model.parameters.tensor(named: "classifier.weight")!.scalars != averaged)
    }

    @Test func aFusedModelFileDescribesItsFusionAndLoadsBack() throws {
        let setup = FuseFLSetup(model: "resnet", blocks: 4, columns: 3, width: 4, adaptor: .mean, seed: 0)
        #expect(setup.metadataValue == "model=resnet blocks=4 columns=3 width=4 adaptor=mean classes=10")
        let model = try FusedNetwork.fusedModel(try setup.network(), columns: 3, adaptor: .mean, seed: 7)
        let bytes = try SafeTensors.encode(model.stateDict(), metadata: [FuseFLSetup.metadataKey: setup.metadataValue])
        let loaded = try FuseFLSetup.fusedModel(from: try SafeTensors.decode(bytes))
        let x = Tensor(shape: [2, 1, 28, 28], repeating: 0.2)
        #expect(loaded.forward(x, training: false).scalars == model.forward(x, training: false).scalars)
        // Metadata that is missing, malformed or does not fit the tensors is refused.
        for bad in [
            "", "model=resnet blocks=4", "model=resnet blocks=4 columns=3 width=1 adaptor=mean classes=10",
            "model=resnet blocks=4 columns=3 width=64 adaptor=mean classes=10",
            "model=resnet blocks=4 columns=60000 width=4 adaptor=mean classes=10",
            "model=resnet blocks=x columns=3 width=4 adaptor=mean classes=10",
            "model=resnet blocks=4 columns=3 width=4 adaptor=max classes=10",
            "model=resnet blocks=2 columns=3 width=4 adaptor=mean classes=10",
        ] {
            let file = try SafeTensors.decode(
                try SafeTensors.encode(model.stateDict(), metadata: bad.isEmpty ? [:] : [FuseFLSetup.metadataKey: bad]))
            #expect(throws: ModelError.self, "\(bad)") { try FuseFLSetup.fusedModel(from: file) }
        }
    }

    @Test func oneRoundFedAvgIsTheSampleWeightedMean() throws {
        let models = try (0..<2).map { try ModelZoo.make("mlp", seed: UInt64($0)) }
        let server = try OneShotBaselines(
            model: "mlp", uploads: try models.map { try SafeTensors.encode($0.stateDict()) }, sampleCounts: [1, 3])
        let average = try server.average()
        for i in stride(from: 0, to: average.parameterCount, by: 997) {
            let expected = 0.25 * models[0].parameters.values[i] + 0.75 * models[1].parameters.values[i]
            #expect(abs(average.parameters.values[i] - expected) < 1e-6)
        }
        // The ensemble's logits are the mean of the models'.
        let x = Tensor(shape: [2, 1, 28, 28], repeating: 0.3)
        let mean = OneShotBaselines.ensembleLogits(models, x).scalars
        let a = models[0].forward(x, training: false).scalars
        let b = models[1].forward(x, training: false).scalars
        for i in mean.indices { #expect(abs(mean[i] - (a[i] + b[i]) / 2) < 1e-6) }
    }

    @Test func badOneShotSectionsAreRefusedByKey() throws {
        let cases: [([String], String)] = [
            (["oneshot.method=sgd"], "oneshot.method"),
            (["oneshot.method=[fedavg,fedavg]"], "oneshot.method"),
            (["oneshot.epochs=3"], "oneshot.epochs"),
            (["oneshot.blocks=3", "oneshot.epochs=6"], "oneshot.blocks"),
            (["oneshot.holdout=0"], "oneshot.holdout"),
            (["oneshot.adaptor=max"], "oneshot.adaptor"),
            (["oneshot.colour=red"], "oneshot.colour"),
        ]
        for (overrides, key) in cases {
            #expect(throws: ConfigError.self, "\(overrides)") { try config(overrides) }
            do { _ = try config(overrides) } catch let error as ConfigError {
                #expect(error.key == key, "\(overrides)")
            }
        }
        // Without FuseFL or FedDF, the block count and hold-out do not matter.
        _ = try config(["oneshot.method=[fedavg,ensemble]", "oneshot.epochs=3", "oneshot.holdout=0"])
        let parsed = try config()
        #expect(parsed.rounds == 1 && parsed.clientsPerRound == 3)
        #expect(parsed.oneShot?.columnWidth(clients: 3) == 4)
        var automatic = parsed.oneShot!
        automatic.width = nil
        // 16 / √M to a multiple of 4: 7.2 → 8 for M = 5, 3.6 → 4 for M = 20.
        #expect(automatic.columnWidth(clients: 5) == 8 && automatic.columnWidth(clients: 20) == 4)
        // The resolved YAML reads back to the same settings.
        #expect(try ExperimentConfig.parse(yaml: parsed.yaml()).oneShot == parsed.oneShot)
    }
}
