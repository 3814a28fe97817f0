import ArgumentParser
import FedCore
import FedData
import FedNN
import FedTensor

extension FedSwiftCommand {
    /// Centralized training on Fashion-MNIST.
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a model on Fashion-MNIST, reporting test accuracy after each epoch.")

        @OptionGroup var common: ModelOptions
        @Option(help: "Epochs.") var epochs = 3
        @Option(help: "Mini-batch size.") var batchSize = 32
        @Option(help: "Learning rate.") var lr: Float = 0.01
        @Option(help: "SGD momentum (ignored by adam/adamw).") var momentum: Float = 0
        @Option(help: "Weight decay.") var weightDecay: Float = 0
        @Flag(help: "Nesterov momentum.") var nesterov = false
        @Option(help: "Optimizer.") var optimizer: OptimizerName = .sgd
        @Option(help: "Learning-rate schedule: constant, or cosine (annealed to 0 over all epochs, per batch).")
        var schedule: ScheduleName = .constant
        @Option(help: "Root seed for initialisation and shuffling.") var seed: UInt64 = 0
        @Option(help: "Save the trained model as safetensors to this path.") var save: String?

        func validate() throws {
            try common.validateCommon()
            guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
            guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
            guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
            guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1)") }
            guard !nesterov || (optimizer == .sgd && momentum > 0) else {
                throw ValidationError("--nesterov needs --optimizer sgd and --momentum > 0")
            }
        }

        func run() throws {
            try common.configureCompute()
            let data = try common.loadData()
            let model = try ModelZoo.make(common.model, seed: seed)
            let opt: any Optimizer =
                switch optimizer {
                case .adam: Adam(learningRate: lr, weightDecay: weightDecay)
                case .adamw: Adam.adamW(learningRate: lr, weightDecay: weightDecay)
                case .sgd: SGD(learningRate: lr, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
                }
            print(
                "model \(common.model) (\(model.parameterCount) parameters), \(data.train.count) train / "
                    + "\(data.test.count) test images, batch \(batchSize), \(common.threads) thread(s)")
            var loader = BatchLoader(dataset: data.train, batchSize: batchSize, shuffle: true, seed: seed)
            let lrSchedule: LearningRateSchedule =
                schedule == .cosine ? .cosine(totalSteps: epochs * loader.batchesPerEpoch) : .constant
            let trainer = Trainer(model: model, optimizer: opt, schedule: lrSchedule)
            for epoch in 1...epochs {
                var bar = ProgressBar(title: "epoch \(epoch)/\(epochs)", total: loader.batchesPerEpoch)
                let stats = try trainer.trainEpoch(&loader) { done, _, loss, rate in
                    bar.update(done, detail: "loss \(fmt(loss, 4))  \(Int(rate)) samples/s")
                }
                let test = try Trainer.evaluate(model, on: data.test)
                bar.finish(
                    "loss \(fmt(stats.loss, 4))  \(Int(stats.samplesPerSecond)) samples/s  "
                        + "test accuracy \(fmt(test.accuracy * 100, 2)) %  test loss \(fmt(test.loss, 4))")
                print(
                    "epoch \(epoch): train loss \(fmt(stats.loss, 4)), \(fmt(stats.seconds, 1)) s, "
                        + "test accuracy \(fmt(test.accuracy, 4)), test loss \(fmt(test.loss, 4))")
            }
            if let save {
                try SafeTensors.write(
                    model.stateDict(), metadata: ["format": "pt", "fedswift.model": common.model], to: save)
                print("saved \(save)")
            }
        }
    }
}

/// `value` with `digits` decimals.
func fmt(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (value * scale).rounded() / scale
    var s = String(r)
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 {
        s += "." + String(repeating: "0", count: digits)
    }
    return s
}

/// The optimizers `fedswift train` offers.
enum OptimizerName: String, CaseIterable, ExpressibleByArgument {
    case sgd, adam, adamw
}

/// The learning-rate schedules `fedswift train` offers.
enum ScheduleName: String, CaseIterable, ExpressibleByArgument {
    case constant, cosine
}
