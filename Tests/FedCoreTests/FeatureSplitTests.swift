import FedNN
import FedTensor
import Testing

@testable import FedCore

/// A seeded batch of `n` images of 28×28.
func featureTestBatch(_ n: Int, seed: UInt64 = 3) -> Tensor {
    var rng = SeededRNG(seed: seed, stream: "feature-split/batch")
    return Tensor(shape: [n, 1, 28, 28], scalars: (0..<(n * 784)).map { _ in rng.nextUniform() })
}

@Suite struct FeatureSplitTests {
    @Test func theTwoPartsAreTheModelForwardAndBackward() throws {
        for (name, cut, features, low) in [
            ("lenet5", "pool2", 400, 6 * 25 + 6 + 16 * 6 * 25 + 16),
            ("lenet5", "relu3", 120, 6 * 25 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120),
            ("mlp", "net.2", 200, 784 * 200 + 200),
            ("resnet", "layer2", 32 * 14 * 14, 0),
        ] {
            let model = try ModelZoo.make(name, seed: 1)
            let split = try FeatureSplit(model: model, cut: cut)
            #expect(split.featureCount == features, "\(name) at \(cut)")
            if low > 0 { #expect(split.lowParameterCount == low, "\(name) at \(cut)") }
            let x = featureTestBatch(4)
            let whole = model.forward(x, training: true)
            let loss = SoftmaxCrossEntropy()
            _ = try loss.evaluate(logits: whole, labels: [0, 3, 9, 3])
            model.parameters.zeroGradients()
            model.backward(loss.gradient)
            let expected = Array(model.parameters.gradients)
            let h = split.forwardLow(x, training: true)
            #expect(Array(h.shape.dims.dropFirst()) == split.featureShape.dims)
            let logits = split.forwardHigh(h, training: true)
            let same = logits == whole
            #expect(same, "\(name) at \(cut): the parts' forward differs")
            _ = try loss.evaluate(logits: logits, labels: [0, 3, 9, 3])
            model.parameters.zeroGradients()
            split.backwardLow(split.backwardHigh(loss.gradient))
            let sameGradients = Array(model.parameters.gradients) == expected
            #expect(sameGradients, "\(name) at \(cut): the parts' gradients differ")
        }
        // resnet: the stem and the first two stages are the low part, a prefix of the buffer.
        let resnet = try FeatureSplit(model: try ModelZoo.make("resnet", seed: 1), cut: "layer2")
        let firstHigh = resnet.model.parameters.entries.first { $0.name.hasPrefix("layer3") }!
        #expect(resnet.lowParameterCount == firstHigh.offset)
    }

    @Test func badCutsAreRefusedWithTheLayersNamed() throws {
        let model = try ModelZoo.make("lenet5", seed: 1)
        let unknown = #expect(throws: ModelError.self) { try FeatureSplit(model: model, cut: "pool9") }
        #expect(unknown?.message.contains("conv1, relu1, pool1") == true)
        #expect(throws: ModelError.self) { try FeatureSplit(model: model, cut: "fc3") }
        #expect(throws: ModelError.self) { try FeatureSplit(model: model, cut: "") }
    }
}

/// FedImpro's client side: the per-class statistics against hand computation, the sampled
/// features' moments, and the synthetic loss's gradients.
@Suite struct FeatureStatisticsTests {
    @Test func batchStatisticsAgainstHandComputation() {
        // Two classes, two features. Rows [1, 2] and [3, 6] of class 0, [5, 5] of class 1.
        var stats = FeatureStatistics(classes: 2, features: 2, mean: [0, 0, 7, 7], std: [1, 1, 1, 1])
        let batch = Tensor(shape: [3, 2], scalars: [1, 2, 5, 5, 3, 6])
        stats.update(features: batch, labels: [0, 1, 0], momentum: 0.5, maximumStd: 1.5)
        // Class 0: batch mean [2, 4], sample std [√2, √8]; with β = 0.5 from μ = 0, σ = 1:
        // μ = [1, 2], σ = [0.5 + √2/2, min(0.5 + √8/2, 1.5)] = [1.2071, 1.5].
        #expect(stats.mean[0] == 1 && stats.mean[1] == 2)
        #expect(abs(stats.std[0] - Float(0.5 + 2.0.squareRoot() / 2)) < 1e-6 && stats.std[1] == 1.5)
        // Class 1, seen once: μ = (7 + 5)/2 = 6; σ keeps its value (one sample has no spread).
        #expect(stats.mean[2] == 6 && stats.mean[3] == 6 && stats.std[2] == 1 && stats.std[3] == 1)
        // β = 0 replaces a class's statistics by the batch's (the official code's behaviour).
        var replaced = FeatureStatistics(classes: 2, features: 2, mean: [9, 9, 9, 9], std: [9, 9, 9, 9])
        replaced.update(features: batch, labels: [0, 1, 0], momentum: 0, maximumStd: 100)
        #expect(replaced.mean == [2, 4, 5, 5])
        #expect(
            abs(replaced.std[0] - Float(2.0.squareRoot())) < 1e-6
                && abs(replaced.std[1] - Float(8.0.squareRoot())) < 1e-6)
        // The server's plain average of two clients' statistics.
        let average = FeatureStatistics.average([stats, replaced])
        #expect(average.mean == [1.5, 3, 5.5, 5.5])
        #expect(abs(average.std[1] - Float((1.5 + 8.0.squareRoot()) / 2)) < 1e-6)
    }

    @Test func sampledFeaturesHaveTheirClassesMeanAndVariance() {
        let mean: [Float] = [0, 1, -2, 0.5, 3, 3, 10, -1, 0.25, 0, 0, 7]
        let std: [Float] = [1, 0.1, 2, 0.5, 0.05, 1, 3, 0.2, 1, 0.01, 4, 0.5]
        let stats = FeatureStatistics(classes: 3, features: 4, mean: mean, std: std)
        var rng = SeededRNG(seed: 11, stream: "sample")
        let (features, labels) = stats.sample(forBatchOf: 3_000, rng: &rng)
        // Balanced: ⌊3000/3⌋ + 1 = 1001 rows of each class, labels cycling 0, 1, 2.
        #expect(labels.count == 3_003 && features.shape == Shape([3_003, 4]))
        #expect(labels.prefix(6) == [0, 1, 2, 0, 1, 2])
        let h = features.scalars
        for c in 0..<3 {
            let rows = labels.indices.filter { labels[$0] == c }
            #expect(rows.count == 1_001)
            for j in 0..<4 {
                let x = rows.map { Double(h[$0 * 4 + j]) }
                let m = x.reduce(0, +) / Double(x.count)
                let v = x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)
                let sigma = Double(std[c * 4 + j])
                // Means within 0.15 σ (4.7 standard errors), variances within 20 % (4.5 of theirs).
                #expect(abs(m - Double(mean[c * 4 + j])) < 0.15 * sigma, "class \(c) feature \(j): mean \(m)")
                #expect(abs(v / (sigma * sigma) - 1) < 0.2, "class \(c) feature \(j): variance \(v)")
            }
        }
    }

    /// The loss CE(synthetic) alone (real weight 0): no gradient on the low-level parameters, and
    /// on the high-level ones the derivative of the loss by central differences.
    @Test func syntheticGradientsReachOnlyTheHighPartAndMatchFiniteDifferences() throws {
        let model = try ModelZoo.make("lenet5", seed: 2)
        let split = try FeatureSplit(model: model, cut: "pool2")
        var rng = SeededRNG(seed: 4, stream: "synthetic")
        let stats = FeatureStatistics.initial(classes: 10, features: split.featureCount, std: 0.5, seed: 4)
        let synthetic = stats.sample(forBatchOf: 6, rng: &rng)
        let images = featureTestBatch(6)
        let labels: [Int32] = [1, 2, 3, 4, 5, 6]
        let losses = (real: SoftmaxCrossEntropy(), synthetic: SoftmaxCrossEntropy())
        model.parameters.zeroGradients()
        let result = try split.step(
            images: images, labels: labels, synthetic: synthetic, realWeight: 0, syntheticWeight: 1, losses: losses)
        let g = Array(model.parameters.gradients)
        let low = split.lowParameterCount
        let lowIsZero = g[..<low].allSatisfy { $0 == 0 }
        let highMoved = g[low...].contains { $0 != 0 }
        #expect(low == 2_572 && lowIsZero && highMoved)
        let values = model.parameters.values
        let features = synthetic.features.reshaped(Shape([synthetic.labels.count] + split.featureShape.dims))
        func syntheticLoss() throws -> Double {
            Double(
                try SoftmaxCrossEntropy().evaluate(
                    logits: split.forwardHigh(features, training: false), labels: synthetic.labels,
                    computeGradient: false))
        }
        #expect(abs(try syntheticLoss() - Double(result.synthetic!)) < 1e-5)
        let entries = model.parameters.entries.filter { $0.offset >= low }
        for entry in entries {
            for index in [entry.offset, entry.offset + entry.count / 2, entry.offset + entry.count - 1] {
                let saved = values[index]
                let eps: Float = 1e-2
                values[index] = saved + eps
                let plus = try syntheticLoss()
                values[index] = saved - eps
                let minus = try syntheticLoss()
                values[index] = saved
                let numeric = (plus - minus) / (2 * Double(eps))
                let analytic = Double(g[index])
                #expect(
                    abs(numeric - analytic) < 2e-3 + 0.02 * abs(analytic),
                    "\(entry.name)[\(index - entry.offset)]: \(analytic) vs \(numeric)")
            }
        }
        // With both losses, the low part's gradients are those of the real loss alone.
        model.parameters.zeroGradients()
        _ = try split.step(images: images, labels: labels, synthetic: nil, syntheticWeight: 0, losses: losses)
        let realOnly = Array(model.parameters.gradients[..<low])
        model.parameters.zeroGradients()
        _ = try split.step(images: images, labels: labels, synthetic: synthetic, syntheticWeight: 1, losses: losses)
        // (Equal up to rounding: the high part's matrix products run on more rows.)
        let both = Array(model.parameters.gradients[..<low])
        let scale = realOnly.map { abs($0) }.max()!
        let worst = zip(both, realOnly).map { abs($0 - $1) }.max()!
        #expect(scale > 0 && worst <= 1e-5 * scale, "low gradients moved by \(worst) of \(scale)")
    }
}

/// FedImpro's server: FedAvg on the model, the plain mean of the clients' statistics, the weight
/// schedule, restorable state, refused uploads; and the client's privacy noise.
@Suite struct FedImproStrategyTests {
    static func strategy(_ parameters: [String: Double] = [:]) throws -> FedImpro {
        try #require(
            try StrategyFactory.makeStrategy(
                name: "fedimpro", parameters: parameters, options: ["cut": "pool2"], model: "lenet5", seed: 5)
                as? FedImpro)
    }

    @Test func statisticsAreAveragedAndBroadcastWithTheModel() throws {
        let strategy = try Self.strategy(["synthetic_weight": 2, "ramp_rounds": 4])
        #expect(strategy.classes == 10 && strategy.features == 400)
        #expect(strategy.uploads(parameterCount: 7) == ["feature_mean": 4_000, "feature_std": 4_000])
        let first = strategy.broadcast(parameterCount: 7)
        #expect(first["fedimpro/weight"] == [0.5])  // 2 · min(1, 1/4)
        #expect(
            first["feature_std"]!.allSatisfy { $0 == 0.1 } && first["feature_mean"]!.allSatisfy { (0..<1).contains($0) }
        )
        let again = try Self.strategy()
        #expect(again.broadcast(parameterCount: 7)["feature_mean"] == first["feature_mean"])  // seeded
        var global: [Float] = [1, 1, 1, 1, 1, 1, 1]
        func update(_ id: Int, _ delta: Float, _ m: Float, _ s: Float, samples: Int) -> ClientUpdate {
            ClientUpdate(
                clientID: id, delta: [Float](repeating: delta, count: 7), sampleCount: samples,
                vectors: [
                    "feature_mean": [Float](repeating: m, count: 4_000),
                    "feature_std": [Float](repeating: s, count: 4_000),
                ])
        }
        let updates = [update(0, 0.5, 1, 0.2, samples: 30), update(1, -0.5, 3, 0.4, samples: 10)]
        try global.withUnsafeMutableBufferPointer {
            try strategy.aggregate(
                global: $0, updates: updates, context: AggregationContext(round: 1, totalClients: 10))
        }
        // The model: FedAvg, (30 · 0.5 − 10 · 0.5) / 40 = 0.25; the statistics: plain means 2 and 0.3.
        #expect(global.allSatisfy { $0 == 1.25 })
        let next = strategy.broadcast(parameterCount: 7)
        #expect(
            next["feature_mean"]!.allSatisfy { $0 == 2 } && next["feature_std"]!.allSatisfy { abs($0 - 0.3) < 1e-7 })
        #expect(next["fedimpro/weight"] == [1])  // 2 · min(1, 2/4)
        // Restored into a fresh strategy: the same broadcast.
        let restored = try Self.strategy(["synthetic_weight": 2, "ramp_rounds": 4])
        try restored.restore(state: strategy.state, parameterCount: 7)
        #expect(restored.broadcast(parameterCount: 7) == next)
        #expect(throws: StrategyError.self) {
            try restored.restore(state: ["feature_mean": [1], "feature_std": [1], "rounds": [1]], parameterCount: 7)
        }
        // An update without statistics, or with NaN in them, is refused and changes nothing.
        var bad = updates
        bad[1].vectors["feature_std"]![17] = .nan
        let before = global
        let nan = #expect(throws: StrategyError.self) {
            try global.withUnsafeMutableBufferPointer {
                try strategy.aggregate(
                    global: $0, updates: bad, context: AggregationContext(round: 2, totalClients: 10))
            }
        }
        #expect(nan?.code == .nonFiniteValue && nan?.clientID == 1 && global == before)
        bad[1].vectors = [:]
        let missing = #expect(throws: StrategyError.self) {
            try global.withUnsafeMutableBufferPointer {
                try strategy.aggregate(
                    global: $0, updates: bad, context: AggregationContext(round: 2, totalClients: 10))
            }
        }
        #expect(missing?.code == .missingVector && global == before)
    }

    @Test func settingsAreChecked() throws {
        let noCut = #expect(throws: StrategyError.self) {
            try StrategyFactory.makeStrategy(name: "fedimpro", model: "lenet5")
        }
        #expect(noCut?.message.contains("cut") == true)
        let badCut = #expect(throws: StrategyError.self) {
            try StrategyFactory.makeStrategy(name: "fedimpro", options: ["cut": "pool7"], model: "lenet5")
        }
        #expect(badCut?.message.contains("conv1, relu1") == true)
        #expect(throws: StrategyError.self) {
            try StrategyFactory.makeStrategy(name: "fedavg", options: ["cut": "pool2"], model: "lenet5")
        }
        #expect(throws: StrategyError.self) { try Self.strategy(["ramp_rounds": 2.5]) }
    }

    /// A broadcast without FedImpro's vectors, and labels outside the classes, fail the step with
    /// a clear error instead of training on made-up statistics or trapping.
    @Test func missingVectorsAndBadLabelsFailTheStep() throws {
        let strategy = try Self.strategy()
        let model = try ModelZoo.make("lenet5", seed: 1)
        let images = featureTestBatch(2)
        var broadcast = strategy.broadcast(parameterCount: model.parameterCount)
        broadcast["feature_std"] = nil
        let rule = try #require(
            strategy.clientAlgorithm.makeRule(broadcast: broadcast, state: [:]) as? FedImproClientRule)
        let missing = #expect(throws: StrategyError.self) {
            try rule.step(model: model, images: images, labels: [0, 1])
        }
        #expect(missing?.code == .missingVector)
        broadcast = strategy.broadcast(parameterCount: model.parameterCount)
        broadcast["fedimpro/weight"] = []
        let noWeight = try #require(
            strategy.clientAlgorithm.makeRule(broadcast: broadcast, state: [:]) as? FedImproClientRule)
        #expect(noWeight.problem?.contains("weight") == true)
        let good = try #require(
            strategy.clientAlgorithm.makeRule(broadcast: strategy.broadcast(parameterCount: 0), state: [:])
                as? FedImproClientRule)
        good.prepare(seed: 1, stream: "client/0/round/1")
        #expect(throws: ModelError.self) { try good.step(model: model, images: images, labels: [0, 10]) }
        let (loss, _) = try good.step(model: model, images: images, labels: [0, 9])
        #expect(loss.isFinite && loss > 0)
    }

    @Test func uploadedStatisticsCarryThePrivacyNoise() throws {
        let strategy = try Self.strategy(["privacy_noise": 0.05])
        let broadcast = strategy.broadcast(parameterCount: 0)
        let rule = try #require(
            strategy.clientAlgorithm.makeRule(broadcast: broadcast, state: [:]) as? FedImproClientRule)
        rule.prepare(seed: 1, stream: "client/0/round/1")
        let upload = [Float]().withUnsafeBufferPointer { rule.endRound(parameters: $0, steps: 0, learningRate: 0.1) }
            .upload
        let noise = zip(upload["feature_mean"]!, broadcast["feature_mean"]!).map { Double($0 - $1) }
        let mean = noise.reduce(0, +) / Double(noise.count)
        let sd = (noise.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(noise.count - 1)).squareRoot()
        // 4,000 draws: the mean within 4 standard errors of 0, the spread within 10 % of σ_ε.
        #expect(abs(mean) < 4 * 0.05 / 4_000.0.squareRoot() && abs(sd / 0.05 - 1) < 0.1)
        let quiet = try #require(
            try Self.strategy().clientAlgorithm.makeRule(broadcast: broadcast, state: [:]) as? FedImproClientRule)
        let exact = [Float]().withUnsafeBufferPointer { quiet.endRound(parameters: $0, steps: 0, learningRate: 0.1) }
        #expect(exact.upload["feature_mean"] == broadcast["feature_mean"])
    }
}
