import FedTensor
import Foundation
import Testing

@testable import FedNN

/// FuseFL's building blocks: the channel-group reduction (its averaging adaptor and final sum),
/// the resnet cut into blocks, fused blocks against their columns run one by one, freezing, and
/// the fused model's safetensors round trip.
struct FusedNetworkTests {
    @Test func channelGroupReduceAveragesAndSumsExactly() throws {
        // [N=1, G·C = 3·2, H=1, W=2]: group g, channel c, pixel p = 100g + 10c + p.
        let x = Tensor(shape: [1, 6, 1, 2], scalars: [0, 1, 10, 11, 100, 101, 110, 111, 200, 201, 210, 211])
        let mean = try Model(ChannelGroupReduce(groups: 3, mode: .mean), inputShape: [6, 1, 2])
        #expect(mean.outputShape == [2, 1, 2])
        #expect(mean.forward(x, training: false).scalars == [100, 101, 110, 111])
        let sum = try Model(ChannelGroupReduce(groups: 3, mode: .sum), inputShape: [6, 1, 2])
        #expect(sum.forward(x, training: false).scalars == [300, 303, 330, 333])
        // Rank 2 (flat features), two samples.
        let flat = try Model(ChannelGroupReduce(groups: 2, mode: .sum), inputShape: [4])
        #expect(
            flat.forward(Tensor(shape: [2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8]), training: false).scalars == [
                4, 6, 12, 14,
            ])
        #expect(throws: ModelError.self) {
            try Model(ChannelGroupReduce(groups: 4, mode: .mean), inputShape: [6, 1, 2])
        }
    }

    @Test func channelGroupReduceGradientsMatchFiniteDifferences() throws {
        for mode in [ChannelGroupReduce.Mode.mean, .sum] {
            try GradientCheck().run(
                ChannelGroupReduce(groups: 3, mode: mode), input: randomTensor([2, 6, 3, 3], seed: 4))
        }
    }

    @Test func distillationLossMatchesHandComputationAndFiniteDifferences() throws {
        let student = Tensor(shape: [2, 3], scalars: [1, 2, 0.5, -1, 0, 3])
        let teacher = Tensor(shape: [2, 3], scalars: [0.2, 1.5, 2, 0, 0, 0])
        for t in [Float(1), 2] {
            let loss = DistillationLoss(temperature: t)
            let value = try loss.evaluate(student: student, teacher: teacher)
            func softmax(_ row: [Float]) -> [Double] {
                let e = row.map { exp(Double($0 / t)) }
                return e.map { $0 / e.reduce(0, +) }
            }
            var expected = 0.0
            var gradient: [Double] = []
            for r in 0..<2 {
                let p = softmax(Array(teacher.scalars[(3 * r)..<(3 * r + 3)]))
                let q = softmax(Array(student.scalars[(3 * r)..<(3 * r + 3)]))
                for j in 0..<3 { expected += p[j] * log(p[j] / q[j]) / 2 }
                for j in 0..<3 { gradient.append((q[j] - p[j]) / Double(t) / 2) }
            }
            #expect(abs(Double(value) - expected) < 1e-6)
            for (a, b) in zip(loss.gradient.scalars, gradient) { #expect(abs(Double(a) - b) < 1e-6) }
            // Central differences of the loss in every student logit.
            var s = student
            for i in 0..<s.count {
                let original = s[i]
                s[i] = original + 1e-2
                let plus = try DistillationLoss(temperature: t).evaluate(student: s, teacher: teacher)
                s[i] = original - 1e-2
                let minus = try DistillationLoss(temperature: t).evaluate(student: s, teacher: teacher)
                s[i] = original
                #expect(abs(Double(plus - minus) / 2e-2 - gradient[i]) < 2e-3)
            }
        }
        // The loss is zero when the student matches the teacher.
        #expect(try DistillationLoss().evaluate(student: teacher, teacher: teacher) == 0)
        #expect(throws: ModelError.self) {
            try DistillationLoss().evaluate(student: student, teacher: Tensor(shape: [3, 2], repeating: 0))
        }
    }

    @Test func theResNetCutIntoBlocksIsTheResNet() throws {
        let whole = try ModelZoo.make("resnet", seed: 5)
        #expect(whole.parameterCount == 77_754)
        let x = randomTensor([3, 1, 28, 28], seed: 2)
        let expected = whole.forward(x, training: false).scalars
        for count in [1, 2, 4] {
            let network = try ModelZoo.blocks("resnet", count: count)
            #expect(network.blocks.count == count && network.features == 64)
            // The blocks one after another, then the classifier, with the whole network's weights.
            var layers: [(name: String, layer: any Layer)] = network.blocks.map { ("", $0.make()) }
            layers.append(("fc", network.classifier()))
            let chained = try Model(Sequential(layers), inputShape: [1, 28, 28])
            #expect(Set(chained.stateDict().map(\.name)) == Set(whole.stateDict().map(\.name)))
            try chained.loadStateDict(whole.stateDict())
            #expect(chained.forward(x, training: false).scalars == expected)
        }
        #expect(throws: ModelError.self) { try ModelZoo.blocks("resnet", count: 3) }
        #expect(throws: ModelError.self) { try ModelZoo.blocks("cnn", count: 2) }
        // Narrow columns: width 4 has 4, 8 and 16 channels.
        #expect(try ModelZoo.blocks("resnet", count: 2, width: 4).features == 16)
    }

    /// Runs `layer` (a fresh block or adaptor) with the tensors of `model` under `prefix`.
    func run(_ layer: any Layer, _ model: Model, prefix: String, on x: Tensor) throws -> Tensor {
        let alone = try Model(layer, inputShape: Shape(Array(x.shape.dims.dropFirst())))
        try alone.loadStateDict(
            model.stateDict().filter { $0.name.hasPrefix(prefix) }.map {
                (String($0.name.dropFirst(prefix.count)), $0.tensor)
            })
        return alone.forward(x, training: false)
    }

    func concatenated(_ parts: [Tensor]) -> Tensor {
        let n = parts[0].shape[0]
        var shape = parts[0].shape
        shape[1] = parts.reduce(0) { $0 + $1.shape[1] }
        var out: [Float] = []
        for s in 0..<n {
            for p in parts {
                let per = p.count / n
                out += p.scalars[(s * per)..<((s + 1) * per)]
            }
        }
        return Tensor(shape: shape, scalars: out)
    }

    @Test(arguments: [2, 4], FusedNetwork.Adaptor.allCases)
    func aFusedModelEqualsItsColumnsRunSeparatelyAndCombined(blocks: Int, adaptor: FusedNetwork.Adaptor) throws {
        let m = 3
        let network = try ModelZoo.blocks("resnet", count: blocks, width: 4)
        let fused = try FusedNetwork.fusedModel(network, columns: m, adaptor: adaptor, seed: 11)
        // Columns differ (each from its own seed), as after training.
        var rng = SeededRNG(seed: 3, stream: "perturb")
        for i in 0..<fused.parameters.count { fused.parameters.values[i] += 0.05 * rng.nextNormal() }
        let x = randomTensor([2, 1, 28, 28], seed: 8)
        // Block by block: every column of block 0 reads the image; column c of block j > 0 reads
        // its adaptor of the M outputs of block j − 1.
        var previous: [Tensor] = []
        for j in 0..<blocks {
            let c = network.blocks[j].inputChannels
            let joined = j == 0 ? x : concatenated(previous)
            previous = try (0..<m).map { column in
                let input: Tensor
                if j == 0 {
                    input = x
                } else if adaptor == .conv {
                    input = try run(
                        Conv2d(m * c, c, kernelSize: 1), fused, prefix: "blocks.\(j).columns.\(column).adaptor.",
                        on: joined)
                } else {
                    // The mean of the M outputs, by hand.
                    var mean = [Float](repeating: 0, count: previous[0].count)
                    for part in previous { for i in mean.indices { mean[i] += part.scalars[i] / Float(m) } }
                    input = Tensor(shape: previous[0].shape, scalars: mean)
                }
                return try run(
                    network.blocks[j].make(), fused, prefix: "blocks.\(j).columns.\(column).block.", on: input)
            }
        }
        // The final features are the sum of the M columns'.
        var features = [Float](repeating: 0, count: 2 * network.features)
        for out in previous { for i in features.indices { features[i] += out.scalars[i] } }
        let expected = try run(
            Linear(network.features, 10), fused, prefix: "classifier.",
            on: Tensor(shape: [2, network.features], scalars: features))
        let logits = fused.forward(x, training: false)
        #expect(logits.shape == [2, 10])
        for (a, b) in zip(logits.scalars, expected.scalars) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b))) }
    }

    @Test func stageModelsFreezeTheFusedBlocksAndTrainTheRest() throws {
        let network = try ModelZoo.blocks("resnet", count: 4, width: 4)
        let model = try FusedNetwork.stageModel(network, stage: 2, columns: 2, adaptor: .conv, seed: 1)
        let names = model.stateDict().map(\.name)
        #expect(names.contains("blocks.0.columns.1.block.conv1.weight"))
        #expect(names.contains("blocks.1.columns.0.adaptor.weight"))
        #expect(names.contains("blocks.2.adaptor.weight") && names.contains("blocks.2.block.layer2.0.conv1.weight"))
        #expect(names.contains("blocks.3.block.layer3.0.conv1.weight") && !names.contains("blocks.3.adaptor.weight"))
        #expect(names.contains("classifier.weight"))
        let x = randomTensor([4, 1, 28, 28], seed: 1)
        // The trained parameters' gradients are those of the same model with nothing frozen:
        // stopping the backward pass at the fused blocks loses nothing.
        let open = try FusedNetwork.stageModel(network, stage: 2, columns: 2, adaptor: .conv, seed: 1)
        try open.setFrozen(false, path: "")
        for m in [model, open] {
            let loss = SoftmaxCrossEntropy()
            m.parameters.zeroGradients()
            try loss.evaluate(logits: m.forward(x, training: true), labels: [0, 1, 2, 3])
            m.backward(loss.gradient)
        }
        for e in model.parameters.entries where !(e.name.hasPrefix("blocks.0.") || e.name.hasPrefix("blocks.1.")) {
            #expect(
                Array(model.parameters.gradients[e.range]) == Array(open.parameters.gradients[e.range]), "\(e.name)")
        }
        let before = model.parameters.flatValues
        let trainer = sgdSteps(model)
        for _ in 0..<3 { try trainer(x, [0, 1, 2, 3]) }
        let after = model.parameters.flatValues
        for e in model.parameters.entries {
            let changed = before[e.range] != after[e.range]
            #expect(changed == !(e.name.hasPrefix("blocks.0.") || e.name.hasPrefix("blocks.1.")), "\(e.name)")
        }
    }

    @Test func aFusedModelRoundTripsThroughSafeTensorsWithReadableNames() throws {
        let network = try ModelZoo.blocks("resnet", count: 2, width: 4)
        let fused = try FusedNetwork.fusedModel(network, columns: 3, adaptor: .conv, seed: 2)
        let bytes = try SafeTensors.encode(fused.stateDict())
        let file = try SafeTensors.decode(bytes)
        #expect(file.names.contains("blocks.1.columns.2.adaptor.weight"))
        #expect(file.names.contains("blocks.0.columns.0.block.conv1.weight"))
        #expect(file["blocks.1.columns.2.adaptor.weight"]?.shape == [4, 12, 1, 1])
        let loaded = try FusedNetwork.fusedModel(network, columns: 3, adaptor: .conv, seed: 99)
        try loaded.loadStateDict(file.tensors)
        let x = randomTensor([2, 1, 28, 28], seed: 5)
        #expect(loaded.forward(x, training: false).scalars == fused.forward(x, training: false).scalars)
        // A file of another fusion does not load.
        let other = try FusedNetwork.fusedModel(network, columns: 2, adaptor: .conv)
        #expect(throws: ModelError.self) { try other.loadStateDict(file.tensors) }
        #expect(
            FusedNetwork.columnName("blocks.1.block.fc.weight", block: 1, column: 4)
                == "blocks.1.columns.4.block.fc.weight")
        #expect(FusedNetwork.columnName("classifier.weight", block: 1, column: 4) == nil)
    }
}

/// Plain SGD steps with cross-entropy on `model`, for the freezing test.
private func sgdSteps(_ model: Model) -> (Tensor, [Int32]) throws -> Void {
    let sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
    let loss = SoftmaxCrossEntropy()
    return { x, y in
        model.parameters.zeroGradients()
        try loss.evaluate(logits: model.forward(x, training: true), labels: y)
        model.backward(loss.gradient)
        sgd.step(model.parameters)
    }
}
