import FedTensor
import Testing

@testable import FedNN

/// Every layer and container: analytic gradients agree with central finite differences.
@Suite struct LayerGradientTests {
    @Test func linear() throws {
        try GradientCheck().run(Linear(7, 5), input: randomTensor([4, 7], seed: 1))
    }

    @Test func linearWithoutBiasOnRank3Input() throws {
        try GradientCheck().run(Linear(6, 3, bias: false), input: randomTensor([2, 4, 6], seed: 2))
    }

    @Test func conv2dSamePadding() throws {
        try GradientCheck().run(Conv2d(2, 3, kernelSize: 3, padding: 1), input: randomTensor([2, 2, 6, 5], seed: 3))
    }

    @Test func conv2dStrideTwo() throws {
        try GradientCheck().run(
            Conv2d(3, 4, kernelSize: 3, stride: 2, padding: 1), input: randomTensor([2, 3, 7, 7], seed: 4))
    }

    @Test func conv2dNoPaddingNoBias() throws {
        try GradientCheck().run(
            Conv2d(2, 2, kernelSize: 5, bias: false), input: randomTensor([3, 2, 8, 6], seed: 5))
    }

    @Test func maxPool() throws {
        // Distinct, well-separated values keep every window's maximum away from a tie.
        var rng = SeededRNG(seed: 6)
        var values = (0..<(2 * 2 * 6 * 6)).map { Float($0) * 0.1 }
        rng.shuffle(&values)
        try GradientCheck(eps: 1e-3).run(MaxPool2d(2), input: Tensor(shape: [2, 2, 6, 6], scalars: values))
        try GradientCheck(eps: 1e-3).run(
            MaxPool2d(3, stride: 2, padding: 1), input: Tensor(shape: [2, 2, 6, 6], scalars: values))
    }

    @Test func avgPool() throws {
        try GradientCheck().run(AvgPool2d(2), input: randomTensor([2, 3, 6, 6], seed: 7))
        try GradientCheck().run(AvgPool2d(3, stride: 2, padding: 1), input: randomTensor([2, 1, 7, 7], seed: 8))
    }

    @Test func relu() throws {
        // Inputs kept away from the kink at zero, where the derivative is undefined.
        let x = randomTensor([3, 10], seed: 9).scalars.map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
        try GradientCheck(eps: 1e-2).run(ReLU(), input: Tensor(shape: [3, 10], scalars: x))
    }

    @Test func flatten() throws {
        try GradientCheck().run(
            Sequential([Flatten(), Linear(12, 2)] as [any Layer]), input: randomTensor([2, 3, 2, 2], seed: 10))
    }

    @Test func batchNormTraining() throws {
        try GradientCheck().run(BatchNorm2d(3), input: randomTensor([4, 3, 3, 3], seed: 11))
    }

    @Test func groupNorm() throws {
        try GradientCheck().run(GroupNorm(groups: 2, channels: 4), input: randomTensor([3, 4, 3, 2], seed: 12))
        // Planes of 90 and groups of 270: the kernels' 8- and 16-wide bodies, their tails, and
        // a second 256-element chunk of the reductions.
        try GradientCheck().run(GroupNorm(groups: 2, channels: 6), input: randomTensor([2, 6, 9, 10], seed: 15))
    }

    @Test func groupNormForwardMatchesADoubleReferenceAndInferenceEqualsTraining() throws {
        let (n, c, groups, hw) = (2, 6, 2, 20 * 20)
        let layer = GroupNorm(groups: groups, channels: c)
        let model = try Model(layer, inputShape: [c, 20, 20])
        // Non-trivial affine parameters, and inputs far from zero.
        for e in model.parameters.entries {
            for i in e.range { model.parameters.values[i] = Float(i - e.range.lowerBound) * 0.25 - 0.5 }
        }
        var x = randomTensor([n, c, 20, 20], seed: 16)
        x = x + Tensor(shape: x.shape, repeating: 50)
        let trained = model.forward(x, training: true).scalars
        model.backward(Tensor(shape: x.shape, repeating: 0))
        let inferred = model.forward(x, training: false).scalars
        #expect(trained == inferred)
        let perGroup = c / groups
        let (gamma, beta) = (model.parameters.entry(named: "weight")!, model.parameters.entry(named: "bias")!)
        for s in 0..<n {
            for g in 0..<groups {
                let lo = (s * c + g * perGroup) * hw
                let segment = x.scalars[lo..<(lo + perGroup * hw)].map(Double.init)
                let mean = segment.reduce(0, +) / Double(segment.count)
                let variance = segment.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(segment.count)
                for (i, v) in segment.enumerated() {
                    let ch = g * perGroup + i / hw
                    let expected =
                        (v - mean) / (variance + 1e-5).squareRoot()
                        * Double(model.parameters.values[gamma.range.lowerBound + ch])
                        + Double(model.parameters.values[beta.range.lowerBound + ch])
                    #expect(abs(Double(trained[lo + i]) - expected) <= 1e-4 * max(1, abs(expected)))
                }
            }
        }
    }

    @Test func layerNorm() throws {
        try GradientCheck().run(LayerNorm([6]), input: randomTensor([4, 3, 6], seed: 13))
        try GradientCheck().run(LayerNorm([2, 3]), input: randomTensor([3, 2, 3], seed: 14))
    }

    @Test func concatBranches() throws {
        let layer = Concat([
            ("a", Conv2d(2, 3, kernelSize: 3, padding: 1)),
            ("b", Sequential([Conv2d(2, 1, kernelSize: 1), GroupNorm(groups: 1, channels: 1)] as [any Layer])),
        ])
        try GradientCheck().run(layer, input: randomTensor([2, 2, 4, 4], seed: 15))
    }

    @Test func residualWithIdentityAndProjection() throws {
        let identity = Residual(
            Sequential([Conv2d(2, 2, kernelSize: 3, padding: 1), GroupNorm(groups: 1, channels: 2)] as [any Layer]))
        try GradientCheck().run(identity, input: randomTensor([2, 2, 4, 4], seed: 16))
        let projection = Residual(
            Sequential([Conv2d(2, 3, kernelSize: 3, stride: 2, padding: 1)] as [any Layer]),
            shortcut: Conv2d(2, 3, kernelSize: 1, stride: 2))
        try GradientCheck().run(projection, input: randomTensor([2, 2, 5, 5], seed: 17))
    }

    @Test func smallCNNEndToEnd() throws {
        let net = Sequential([
            ("conv1", Conv2d(1, 3, kernelSize: 3, padding: 1)), ("relu", ReLU()), ("pool", AvgPool2d(2)),
            ("flatten", Flatten()), ("fc", Linear(12, 4)),
        ])
        // A small step: ReLU kinks sit close to many pre-activations of this net.
        try GradientCheck(eps: 1e-3).run(net, input: randomTensor([2, 1, 4, 4], seed: 18))
    }
}

/// Losses: gradients against finite differences and exact values.
@Suite struct LossTests {
    @Test func crossEntropyGradientMatchesFiniteDifferences() throws {
        let logits = randomTensor([4, 5], seed: 20)
        let labels: [Int32] = [0, 3, 4, 1]
        let loss = SoftmaxCrossEntropy()
        _ = try loss.evaluate(logits: logits, labels: labels)
        let g = loss.gradient.scalars
        var x = logits
        let eps: Float = 1e-2
        for i in 0..<logits.count {
            let o = x[i]
            x[i] = o + eps
            let plus = try SoftmaxCrossEntropy().evaluate(logits: x, labels: labels, computeGradient: false)
            x[i] = o - eps
            let minus = try SoftmaxCrossEntropy().evaluate(logits: x, labels: labels, computeGradient: false)
            x[i] = o
            #expect(abs((plus - minus) / (2 * eps) - g[i]) < 1e-3)
        }
    }

    @Test func crossEntropyExactValueAndStability() throws {
        // Uniform logits: loss = ln(C). Huge logits: no overflow, loss of the right class ≈ 0.
        let loss = SoftmaxCrossEntropy()
        let uniform = try loss.evaluate(logits: Tensor(shape: [1, 4], repeating: 3), labels: [2])
        #expect(abs(uniform - Float(1.3862944)) < 1e-6)
        let huge = try loss.evaluate(
            logits: Tensor(shape: [2, 2], scalars: [1000, -1000, 1000, -1000]), labels: [0, 1])
        #expect(abs(huge - 1000) < 1e-3)
        #expect(loss.correct == 1)
        #expect(loss.gradient.scalars.allSatisfy { $0.isFinite })
    }

    @Test func crossEntropyRejectsBadLabels() {
        #expect(throws: ModelError.self) {
            try SoftmaxCrossEntropy().evaluate(logits: Tensor(shape: [1, 3]), labels: [3])
        }
        #expect(throws: ModelError.self) {
            try SoftmaxCrossEntropy().evaluate(logits: Tensor(shape: [2, 3]), labels: [0])
        }
    }

    @Test func meanSquaredErrorValueAndGradient() throws {
        let mse = MeanSquaredError()
        let v = try mse.evaluate(
            prediction: Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]),
            target: Tensor(shape: [2, 2], scalars: [0, 2, 5, 4]))
        #expect(v == 1.25)  // (1 + 0 + 4 + 0) / 4
        #expect(mse.gradient.scalars == [0.5, 0, -1, 0])  // 2(p − t)/4
    }
}
