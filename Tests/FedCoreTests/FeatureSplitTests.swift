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
            #expect(logits == whole, "\(name) at \(cut): the parts' forward differs")
            _ = try loss.evaluate(logits: logits, labels: [0, 3, 9, 3])
            model.parameters.zeroGradients()
            split.backwardLow(split.backwardHigh(loss.gradient))
            #expect(Array(model.parameters.gradients) == expected, "\(name) at \(cut): the parts' gradients differ")
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
