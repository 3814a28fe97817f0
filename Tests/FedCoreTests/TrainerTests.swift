import FedData
import FedNN
import FedTensor
import Testing

@testable import FedCore

@Suite struct TrainerTests {
    @Test func learnsSeparableSyntheticData() throws {
        let data = SyntheticDataset.make(count: 512, classes: 4, channels: 1, height: 8, width: 8, seed: 3, noise: 0.5)
        let net = Sequential([
            ("conv1", Conv2d(1, 4, kernelSize: 3, padding: 1)), ("relu", ReLU()), ("pool", MaxPool2d(2)),
            ("flatten", Flatten()), ("fc", Linear(64, 4)),
        ])
        let model = try Model(net, inputShape: [1, 8, 8], seed: 1)
        let before = try Trainer.evaluate(model, on: data)
        let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.05, momentum: 0.9))
        var loader = BatchLoader(dataset: data, batchSize: 32, shuffle: true, seed: 1)
        var losses: [Double] = []
        for _ in 0..<3 { losses.append(try trainer.trainEpoch(&loader).loss) }
        let after = try Trainer.evaluate(model, on: data)
        #expect(before.accuracy < 0.5)
        #expect(after.accuracy > 0.95)
        #expect(losses[2] < losses[0])
    }

    @Test func trainingIsReproducibleForASeed() throws {
        func run() throws -> [Float] {
            let data = SyntheticDataset.make(count: 128, classes: 3, channels: 1, height: 6, width: 6, seed: 5)
            let model = try Model(Sequential([Flatten(), Linear(36, 3)] as [any Layer]), inputShape: [1, 6, 6], seed: 7)
            let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.1))
            var loader = BatchLoader(dataset: data, batchSize: 16, shuffle: true, seed: 9)
            _ = try trainer.trainEpoch(&loader)
            return model.parameters.flatValues
        }
        #expect(try run() == run())
    }

    /// End to end on the real Fashion-MNIST files: the FedAvg paper's 2NN passes 80 % test
    /// accuracy after one epoch of SGD with momentum.
    @Test func mlpReaches80PercentOnFashionMNISTInOneEpoch() throws {
        BLAS.setThreads(1)
        let data = try FashionMNIST.load()
        let model = try ModelZoo.make("mlp", seed: 0)
        let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.01, momentum: 0.9))
        var loader = BatchLoader(dataset: data.train, batchSize: 32, shuffle: true, seed: 0)
        let train = try trainer.trainEpoch(&loader)
        let test = try Trainer.evaluate(model, on: data.test)
        #expect(train.samples == 60_000)
        #expect(test.samples == 10_000)
        #expect(test.accuracy >= 0.80, "test accuracy \(test.accuracy)")
        #expect(test.loss < 0.6)
    }
}
