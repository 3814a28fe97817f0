import FedTensor
import Testing

@testable import FedNN

/// The model zoo's sizes and names, state dicts and freezing.
@Suite struct ModelTests {
    @Test func zooParameterCountsAreExact() throws {
        #expect(try ModelZoo.make("mlp").parameterCount == 199_210)
        #expect(try ModelZoo.make("cnn").parameterCount == 1_663_370)
        #expect(try ModelZoo.make("lenet5").parameterCount == 61_706)
        #expect(try ModelZoo.make("resnet").parameterCount == 77_754)
    }

    @Test func zooNamesMatchThePyTorchDefinitions() throws {
        let cnn = try ModelZoo.make("cnn")
        #expect(
            cnn.stateDict().map(\.name) == [
                "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight",
                "fc2.bias",
            ])
        #expect(cnn.parameters.entry(named: "conv2.weight")?.shape == [64, 32, 5, 5])
        #expect(cnn.parameters.entry(named: "fc1.weight")?.shape == [512, 3136])
        let mlp = try ModelZoo.make("mlp")
        #expect(
            mlp.stateDict().map(\.name) == [
                "net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias", "net.5.weight", "net.5.bias",
            ])
        let resnet = try ModelZoo.make("resnet")
        let names = resnet.stateDict().map(\.name)
        #expect(names.contains("layer2.0.conv1.weight"))
        #expect(names.contains("layer2.0.shortcut.0.weight"))
        #expect(names.contains("layer3.0.gn2.bias"))
        #expect(!names.contains("layer1.0.shortcut.0.weight"))
    }

    /// The zoo's CNN pools before it rectifies; that is the same function, with the same
    /// gradients, as PyTorch's conv → ReLU → pool order, bit for bit.
    @Test(arguments: ComputeBackend.available)
    func cnnPoolingBeforeReLUEqualsTheReLUFirstOrder(backend: ComputeBackend) throws {
        try ComputeBackend.with(backend) {
            let zoo = try ModelZoo.make("cnn", seed: 3)
            let reluFirst = try Model(
                Sequential([
                    ("conv1", Conv2d(1, 32, kernelSize: 5, padding: 2)), ("relu1", ReLU()), ("pool1", MaxPool2d(2)),
                    ("conv2", Conv2d(32, 64, kernelSize: 5, padding: 2)), ("relu2", ReLU()), ("pool2", MaxPool2d(2)),
                    ("flatten", Flatten()), ("fc1", Linear(7 * 7 * 64, 512)), ("relu3", ReLU()),
                    ("fc2", Linear(512, 10)),
                ]), inputShape: [1, 28, 28], seed: 3)
            #expect(reluFirst.parameters.flatValues == zoo.parameters.flatValues)
            // Ties and zeros: a quarter of the pixels are exactly 0, as in Fashion-MNIST's borders.
            var x = randomTensor([3, 1, 28, 28], seed: 9)
            x.withUnsafeMutableBufferPointer { p in for i in stride(from: 0, to: p.count, by: 4) { p[i] = 0 } }
            let upstream = randomTensor([3, 10], seed: 10)
            var outputs: [[Float]] = []
            var inputGradients: [[Float]] = []
            var gradients: [[Float]] = []
            for model in [zoo, reluFirst] {
                model.parameters.zeroGradients()
                outputs.append(model.forward(x, training: true).scalars)
                inputGradients.append(model.backwardWithInputGradient(upstream).scalars)
                gradients.append(Array(model.parameters.gradients))
            }
            #expect(outputs[0] == outputs[1])
            #expect(inputGradients[0] == inputGradients[1])
            #expect(gradients[0] == gradients[1])
            #expect(gradients[0].contains { $0 != 0 })
        }
    }

    @Test func unknownModelNamesTheChoices() {
        #expect {
            _ = try ModelZoo.make("vgg")
        } throws: { error in
            (error as? ModelError)?.message.contains("mlp, mlp-WIDTH (1...65536), cnn, lenet5, resnet") == true
        }
        #expect(throws: ModelError.self) { try ModelZoo.make("mlp-0") }
        #expect(throws: ModelError.self) { try ModelZoo.make("mlp-x") }
        #expect(!ModelZoo.isKnown("mlp-70000") && ModelZoo.isKnown("mlp-4800") && ModelZoo.isKnown("cnn"))
    }

    /// `mlp-WIDTH`: the mlp's layers and names with hidden layers of WIDTH units.
    @Test func wideMLPHasTheMLPsNamesAndItsWidth() throws {
        let wide = try ModelZoo.make("mlp-300", seed: 1)
        let mlp = try ModelZoo.make("mlp", seed: 1)
        #expect(wide.parameters.entries.map(\.name) == mlp.parameters.entries.map(\.name))
        #expect(wide.parameterCount == 784 * 300 + 300 + 300 * 300 + 300 + 300 * 10 + 10)
        #expect(try ModelZoo.make("mlp-200", seed: 1).parameters.flatValues == mlp.parameters.flatValues)
    }

    @Test func initializationIsDeterministicAndPyTorchBounded() throws {
        let a = try ModelZoo.make("cnn", seed: 3)
        let b = try ModelZoo.make("cnn", seed: 3)
        let c = try ModelZoo.make("cnn", seed: 4)
        #expect(a.parameters.flatValues == b.parameters.flatValues)
        #expect(a.parameters.flatValues != c.parameters.flatValues)
        // conv2: fan_in = 32·25 = 800, so values lie in ±1/√800 and spread across it.
        let w = a.parameters.tensor(named: "conv2.weight")!.scalars
        let bound = 1 / Float(800).squareRoot()
        #expect(w.allSatisfy { abs($0) <= bound })
        #expect(w.max()! > 0.95 * bound && w.min()! < -0.95 * bound)
    }

    @Test func loadStateDictRoundTripsAndRejectsBadInput() throws {
        let a = try ModelZoo.make("lenet5", seed: 1)
        let b = try ModelZoo.make("lenet5", seed: 2)
        try b.loadStateDict(a.stateDict())
        #expect(b.parameters.flatValues == a.parameters.flatValues)

        var missing = a.stateDict()
        missing.removeLast()
        #expect(throws: ModelError.self) { try b.loadStateDict(missing) }
        var extra = a.stateDict()
        extra.append(("fc9.weight", Tensor(shape: [1])))
        #expect(throws: ModelError.self) { try b.loadStateDict(extra) }
        // A wrong shape anywhere leaves the model untouched.
        let c = try ModelZoo.make("lenet5", seed: 3)
        let before = c.parameters.flatValues
        var wrong = a.stateDict()
        wrong[wrong.count - 1] = (wrong[wrong.count - 1].name, Tensor(shape: [11]))
        #expect(throws: ModelError.self) { try c.loadStateDict(wrong) }
        #expect(c.parameters.flatValues == before)
    }

    @Test func batchNormBuffersAreInTheStateDictInPyTorchOrder() throws {
        let m = try Model(
            Sequential([("conv", Conv2d(1, 2, kernelSize: 3)), ("bn", BatchNorm2d(2))]), inputShape: [1, 5, 5])
        #expect(
            m.stateDict().map(\.name) == [
                "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                "bn.num_batches_tracked",
            ])
    }

    @Test func frozenLayerGetsNoGradient() throws {
        let model = try Model(Sequential([("a", Linear(3, 4)), ("r", ReLU()), ("b", Linear(4, 2))]), inputShape: [3])
        try model.setFrozen(true, path: "a")
        let y = model.forward(randomTensor([5, 3], seed: 1), training: true)
        model.backward(Tensor(shape: y.shape, repeating: 1))
        let a = model.parameters.entry(named: "a.weight")!
        let b = model.parameters.entry(named: "b.weight")!
        #expect(model.parameters.gradients[a.range].allSatisfy { $0 == 0 })
        #expect(model.parameters.gradients[b.range].contains { $0 != 0 })
        #expect(throws: ModelError.self) { try model.setFrozen(true, path: "nope") }
    }

    @Test func aSkippedFrozenPrefixDropsItsCachesSoItsBuffersAreReused() throws {
        let features = Sequential([("conv", Conv2d(1, 2, kernelSize: 3)), ("relu", ReLU())])
        let model = try Model(
            Sequential([("features", features), ("flatten", Flatten()), ("fc", Linear(32, 3))]), inputShape: [1, 6, 6])
        try model.setFrozen(true, path: "features")
        let x = randomTensor([2, 1, 6, 6], seed: 3)
        // Where the ReLU writes its output; the tensor itself is dropped at once.
        func outputAddress() -> UnsafeRawPointer {
            features.forward(x, training: false).withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) }
        }
        let first = outputAddress()
        for _ in 0..<2 {
            let y = model.forward(x, training: true)
            model.backward(Tensor(shape: y.shape, repeating: 1))
        }
        // The backward pass stopped above `features`. Had the ReLU kept its training cache (its own
        // output), the buffer would still be referenced and the next forward would allocate another.
        #expect(outputAddress() == first)
    }

    @Test func dropoutMasksAndScalesInTrainingOnly() throws {
        let model = try Model(Dropout(0.25), inputShape: [4000], seed: 0)
        let x = Tensor(shape: [1, 4000], repeating: 1)
        #expect(model.forward(x, training: false).scalars == x.scalars)
        let y = model.forward(x, training: true).scalars
        let kept = y.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        #expect(abs(Double(kept.count) / 4000 - 0.75) < 0.03)
        let g = model.backwardWithInputGradient(Tensor(shape: [1, 4000], repeating: 2)).scalars
        for i in 0..<4000 { #expect(g[i] == 2 * y[i]) }
    }

    @Test func batchNormEvalUsesRunningStatistics() throws {
        let model = try Model(BatchNorm2d(1, momentum: 0.5), inputShape: [1, 1, 2])
        _ = model.forward(Tensor(shape: [1, 1, 1, 2], scalars: [1, 3]), training: true)
        model.backward(Tensor(shape: [1, 1, 1, 2], repeating: 0))
        // mean 2, unbiased var 2 → running_mean 1, running_var 0.5·1 + 0.5·2 = 1.5
        #expect(model.buffers.tensor(named: "running_mean")!.scalars == [1])
        #expect(model.buffers.tensor(named: "running_var")!.scalars == [1.5])
        #expect(model.buffers.tensor(named: "num_batches_tracked")!.scalars == [1])
        let y = model.forward(Tensor(shape: [1, 1, 1, 2], scalars: [1, 2.5]), training: false).scalars
        let inv = 1 / (Float(1.5) + 1e-5).squareRoot()
        #expect(abs(y[0] - 0) < 1e-6)
        #expect(abs(y[1] - 1.5 * inv) < 1e-6)
    }
}
