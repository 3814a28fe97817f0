import FedData
import FedNN
import FedTensor

/// Loss and accuracy over a pass of the data.
public struct PassStatistics: Sendable {
    public var loss: Double
    public var accuracy: Double
    public var samples: Int
    public var seconds: Double
    public var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }

    public init(loss: Double, accuracy: Double, samples: Int, seconds: Double) {
        self.loss = loss
        self.accuracy = accuracy
        self.samples = samples
        self.seconds = seconds
    }
}

/// Supervised training of a classifier with softmax cross-entropy: one reusable batch buffer,
/// one loss object, one optimizer; a step allocates nothing once shapes settle.
///
/// ```swift
/// let trainer = Trainer(model: try ModelZoo.make("cnn"), optimizer: SGD(learningRate: 0.01, momentum: 0.9))
/// var loader = BatchLoader(dataset: train, batchSize: 32, shuffle: true, seed: 0)
/// let stats = try trainer.trainEpoch(&loader)
/// ```
public final class Trainer {
    public let model: Model
    public let optimizer: any Optimizer
    /// Applied before every step from the optimizer's rate at construction.
    public var schedule: LearningRateSchedule
    public let baseLearningRate: Float
    /// Optimisation steps taken so far.
    public private(set) var stepCount = 0
    /// Called after backward and before the optimizer step, e.g. to add FedProx's proximal
    /// term or SCAFFOLD's control-variate correction to the gradients.
    public var gradientHook: ((ParameterSet) -> Void)?
    private let loss = SoftmaxCrossEntropy()
    private var images = Tensor(shape: [0])
    private var labels: [Int32] = []

    public init(model: Model, optimizer: any Optimizer, schedule: LearningRateSchedule = .constant) {
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.baseLearningRate = optimizer.learningRate
    }

    /// One optimisation step on a batch; returns the batch's mean loss.
    @discardableResult
    public func step(images: Tensor, labels: [Int32]) throws -> Float {
        model.parameters.zeroGradients()
        let logits = model.forward(images, training: true)
        let value = try loss.evaluate(logits: logits, labels: labels)
        model.backward(loss.gradient)
        gradientHook?(model.parameters)
        optimizer.learningRate = schedule.rate(base: baseLearningRate, step: stepCount)
        optimizer.step(model.parameters)
        stepCount += 1
        return value
    }

    /// Starts counting steps (and the schedule) from zero again.
    public func resetStepCount() { stepCount = 0 }

    /// Number of rows of the last step's batch that were classified correctly.
    public var lastCorrect: Int { loss.correct }

    /// Trains over every batch `loader` yields for its current epoch, then advances it to the next.
    /// - Parameter progress: called after each batch with (batches done, batches in the epoch,
    ///   running mean loss, samples per second so far).
    public func trainEpoch(
        _ loader: inout BatchLoader, progress: ((Int, Int, Double, Double) -> Void)? = nil
    ) throws -> PassStatistics {
        let clock = ContinuousClock()
        let start = clock.now
        var total: Double = 0
        var correct = 0
        var samples = 0
        var batches = 0
        while true {
            let n = loader.next(images: &images, labels: &labels)
            if n == 0 { break }
            let value = try step(images: images, labels: labels)
            total += Double(value) * Double(n)
            correct += loss.correct
            samples += n
            batches += 1
            if let progress {
                progress(
                    batches, loader.batchesPerEpoch, total / Double(samples),
                    Double(samples) / (clock.now - start).seconds)
            }
        }
        loader.reset(epoch: loader.epoch + 1)
        return PassStatistics(
            loss: samples > 0 ? total / Double(samples) : 0,
            accuracy: samples > 0 ? Double(correct) / Double(samples) : 0,
            samples: samples, seconds: (clock.now - start).seconds)
    }

    /// Mean loss and accuracy of `model` on `dataset`, in evaluation mode.
    public static func evaluate(
        _ model: Model, on dataset: LabeledDataset, batchSize: Int = 100
    ) throws -> PassStatistics {
        let clock = ContinuousClock()
        let start = clock.now
        let loss = SoftmaxCrossEntropy()
        var images = Tensor(shape: [0])
        var labels: [Int32] = []
        var total: Double = 0
        var correct = 0
        var s = 0
        while s < dataset.count {
            let n = min(batchSize, dataset.count - s)
            dataset.copyBatch(start: s, count: n, images: &images, labels: &labels)
            let logits = model.forward(images, training: false)
            total += Double(try loss.evaluate(logits: logits, labels: labels, computeGradient: false)) * Double(n)
            correct += loss.correct
            s += n
        }
        let count = max(dataset.count, 1)
        return PassStatistics(
            loss: total / Double(count), accuracy: Double(correct) / Double(count), samples: dataset.count,
            seconds: (clock.now - start).seconds)
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
