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
            let model = try Model(
                Sequential([Flatten(), Linear(36, 3)] as [any Layer]), inputShape: [1, 6, 6], seed: 7)
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

@Suite struct TrainerScheduleTests {
    @Test func trainerAppliesTheScheduleBeforeEachStep() throws {
        let data = SyntheticDataset.make(count: 64, classes: 2, channels: 1, height: 2, width: 2, seed: 1)
        let model = try Model(Sequential([Flatten(), Linear(4, 2)] as [any Layer]), inputShape: [1, 2, 2], seed: 0)
        let sgd = SGD(learningRate: 0.4)
        let trainer = Trainer(model: model, optimizer: sgd, schedule: .cosine(totalSteps: 4))
        var loader = BatchLoader(dataset: data, batchSize: 16, shuffle: false, seed: 0)
        var rates: [Float] = []
        var images = Tensor(shape: [0])
        var labels: [Int32] = []
        while loader.next(images: &images, labels: &labels) > 0 {
            try trainer.step(images: images, labels: labels)
            rates.append(sgd.learningRate)
        }
        #expect(trainer.stepCount == 4)
        #expect(rates.count == 4)
        #expect(rates[0] == 0.4)
        #expect(abs(rates[2] - 0.2) < 1e-7)
        #expect(rates[3] < rates[2] && rates[3] > 0)
    }
}
