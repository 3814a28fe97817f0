import FedData
import FedNN
import FedTensor

/// Loss and accuracy over a pass of the data.
public struct PassStatistics: Sendable {
    public var loss: Double
    public var accuracy: Double
    public var samples: Int
    public var seconds: Double
    /// Optimisation steps taken (training passes only).
    public var steps: Int
    public var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }

    public init(loss: Double, accuracy: Double, samples: Int, seconds: Double, steps: Int = 0) {
        self.loss = loss
        self.accuracy = accuracy
        self.samples = samples
        self.seconds = seconds
        self.steps = steps
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
    /// Replaces the forward, loss and backward of every step (FedImpro's synthetic features): it
    /// fills the model's zeroed gradients and returns the batch's mean loss and correct rows.
    public var stepOverride: ((_ images: Tensor, _ labels: [Int32]) throws -> (loss: Float, correct: Int))?
    private let loss = SoftmaxCrossEntropy()
    private var overriddenCorrect = 0
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
        let value: Float
        if let stepOverride {
            (value, overriddenCorrect) = try stepOverride(images, labels)
        } else {
            let logits = model.forward(images, training: true)
            value = try loss.evaluate(logits: logits, labels: labels)
            model.backward(loss.gradient)
        }
        gradientHook?(model.parameters)
        optimizer.learningRate = schedule.rate(base: baseLearningRate, step: stepCount)
        optimizer.step(model.parameters)
        stepCount += 1
        return value
    }

    /// Starts counting steps (and the schedule) from zero again.
    public func resetStepCount() { stepCount = 0 }

    /// Number of rows of the last step's batch that were classified correctly.
    public var lastCorrect: Int { stepOverride == nil ? loss.correct : overriddenCorrect }

    /// Trains over every batch `loader` yields for its current epoch, then advances it to the next.
    /// - Parameter progress: called after each batch with (batches done, batches in the epoch,
    ///   running mean loss, samples per second so far).
    public func trainEpoch(
        _ loader: inout BatchLoader, progress: ((Int, Int, Double, Double) -> Void)? = nil
    ) throws -> PassStatistics {
        let batches = loader.batchesPerEpoch
        let stats = try train(
            next: { loader.next(images: &$0, labels: &$1) },
            progress: progress.map { report in { done, loss, rate in report(done, batches, loss, rate) } })
        loader.reset(epoch: loader.epoch + 1)
        return stats
    }

    /// The training loop: steps on the batches `next` fills in (returning their size) until it
    /// returns 0 or `steps` steps are done. The loss is the mean over the samples, summed batch by
    /// batch in order.
    /// - Parameter progress: called after each batch with (batches done, running mean loss,
    ///   samples per second so far).
    public func train(
        steps limit: Int? = nil, next: (inout Tensor, inout [Int32]) -> Int,
        progress: ((Int, Double, Double) -> Void)? = nil
    ) throws -> PassStatistics {
        let clock = ContinuousClock()
        let start = clock.now
        var total: Double = 0
        var correct = 0
        var samples = 0
        var batches = 0
        while limit.map({ batches < $0 }) ?? true {
            let n = next(&images, &labels)
            if n == 0 { break }
            let value = try step(images: images, labels: labels)
            total += Double(value) * Double(n)
            correct += lastCorrect
            samples += n
            batches += 1
            progress?(batches, total / Double(samples), Double(samples) / (clock.now - start).seconds)
        }
        return PassStatistics(
            loss: samples > 0 ? total / Double(samples) : 0,
            accuracy: samples > 0 ? Double(correct) / Double(samples) : 0,
            samples: samples, seconds: (clock.now - start).seconds, steps: batches)
    }

    /// A client's local training: `steps` steps (every epoch of `indices` by default) on batches
    /// of `batchSize` of the samples `indices` of `data`, visited in a fresh order every epoch drawn
    /// from `rng`. Federated clients train this way in rounds and in one-shot stages alike.
    public func trainLocal(
        on data: LabeledDataset, indices: [Int], epochs: Int, steps: Int? = nil, batchSize bs: Int,
        rng: inout SeededRNG
    ) throws -> PassStatistics {
        let stepsPerEpoch = (indices.count + bs - 1) / bs
        var order = indices
        var position = order.count
        return try train(steps: steps ?? epochs * stepsPerEpoch) { images, labels in
            if position >= order.count {
                rng.shuffle(&order)
                position = 0
            }
            let n = min(bs, order.count - position)
            data.copyBatch(indices: order[position..<(position + n)], images: &images, labels: &labels)
            position += n
            return n
        }
    }

    /// Mean loss and accuracy of `model` on `dataset`, in evaluation mode.
    public static func evaluate(
        _ model: Model, on dataset: LabeledDataset, batchSize: Int = 100
    ) throws -> PassStatistics {
        let start = ContinuousClock.now
        let batches = try Evaluator().evaluate(model, on: dataset, batchSize: batchSize)
        return Evaluator.combine(batches, samples: dataset.count, seconds: (ContinuousClock.now - start).seconds)
    }
}

/// The evaluation loop: a model's loss and correct count on batches of a dataset, in evaluation
/// mode, with reusable buffers. Batches can be split over threads (`first`, `stride`) and
/// combined in batch order, so the result does not depend on the split.
public final class Evaluator {
    /// One batch's summed loss and number correct.
    public struct Batch: Sendable {
        public var index: Int
        public var loss: Double
        public var correct: Int
    }

    private let loss = SoftmaxCrossEntropy()
    private var images = Tensor(shape: [0])
    private var labels: [Int32] = []

    public init() {}

    /// Batches `first`, `first + stride`, … of `batchSize` samples of `dataset`, in batch order.
    public func evaluate(
        _ model: Model, on dataset: LabeledDataset, batchSize: Int, first: Int = 0, stride: Int = 1
    ) throws -> [Batch] {
        precondition(batchSize > 0 && first >= 0 && stride > 0, "batch size and stride must be positive")
        var out: [Batch] = []
        var b = first
        while b * batchSize < dataset.count {
            let n = min(batchSize, dataset.count - b * batchSize)
            dataset.copyBatch(start: b * batchSize, count: n, images: &images, labels: &labels)
            let logits = model.forward(images, training: false)
            let mean = try loss.evaluate(logits: logits, labels: labels, computeGradient: false)
            out.append(Batch(index: b, loss: Double(mean) * Double(n), correct: loss.correct))
            b += stride
        }
        return out
    }

    /// Mean loss and accuracy over `samples` from batch results (any order; summed in batch order).
    public static func combine(_ batches: [Batch], samples: Int, seconds: Double) -> PassStatistics {
        var loss = 0.0
        var correct = 0
        for b in batches.sorted(by: { $0.index < $1.index }) {
            loss += b.loss
            correct += b.correct
        }
        let count = max(samples, 1)
        return PassStatistics(
            loss: loss / Double(count), accuracy: Double(correct) / Double(count), samples: samples, seconds: seconds)
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
