import FedCore
import FedData
import FedNN
import FedTensor

/// A client of the one-round baselines (FedAvg, Ensemble, FedDF): it trains the zoo model from
/// the shared initial weights (stream `init/…` of the run's seed) for all its epochs and uploads
/// the whole `state_dict`. It shuffles from its own stream `oneshot/client/<id>`.
public final class LocalModelClient {
    public let id: Int
    let modelName: String
    let seed: UInt64
    let training: ExperimentConfig.LocalTraining
    let epochs: Int
    let data: LabeledDataset
    let indices: [Int]

    public init(
        id: Int, model: String, seed: UInt64, training: ExperimentConfig.LocalTraining, epochs: Int,
        data: LabeledDataset, indices: [Int]
    ) {
        self.id = id
        self.modelName = model
        self.seed = seed
        self.training = training
        self.epochs = epochs
        self.data = data
        self.indices = indices
    }

    public func train() throws -> OneShotUpload {
        let clock = ContinuousClock()
        let started = clock.now
        let model = try ModelZoo.make(modelName, seed: seed)
        let trainer = Trainer(
            model: model,
            optimizer: SGD(
                learningRate: Float(training.learningRate), momentum: Float(training.momentum),
                weightDecay: Float(training.weightDecay)))
        var rng = SeededRNG(seed: seed, stream: "oneshot/client/\(id)")
        let stats = try ComputeThreads.withThreads(1) {
            try trainer.trainLocal(on: data, indices: indices, epochs: epochs, batchSize: training.batchSize, rng: &rng)
        }
        return OneShotUpload(
            payload: try OneShotMessage.encode(model.stateDict()), samplesProcessed: stats.samples, steps: stats.steps,
            trainLoss: stats.loss, computeSeconds: (clock.now - started).seconds)
    }
}

/// The server side of the one-round baselines: the clients' models decoded and checked, their
/// FedAvg average, their ensemble, and FedDF's distillation of the average from the ensemble.
public final class OneShotBaselines {
    public let modelName: String
    /// The clients' models, in client order.
    public let models: [Model]
    public let sampleCounts: [Int]

    /// Decodes the uploads (client order) of the zoo model `name`.
    /// - Throws: `ModelError` naming the client whose upload is malformed.
    public init(model name: String, uploads: [[UInt8]], sampleCounts: [Int]) throws {
        precondition(uploads.count == sampleCounts.count && !uploads.isEmpty, "one upload per client")
        modelName = name
        let layout = OneShotMessage.layout(of: try ModelZoo.make(name), prefix: "")
        models = try uploads.enumerated().map { m, bytes in
            let model = try ModelZoo.make(name)
            try model.loadStateDict(try OneShotMessage.decode(bytes, expecting: layout, from: "client \(m)'s model"))
            return model
        }
        self.sampleCounts = sampleCounts
    }

    /// One-round FedAvg: the models' parameters and buffers averaged, weighted by sample counts.
    public func average() throws -> Model {
        let out = try ModelZoo.make(modelName)
        let total = Double(sampleCounts.reduce(0, +))
        for part in [\Model.parameters, \Model.buffers] {
            let target = out[keyPath: part]
            var sum = [Double](repeating: 0, count: target.count)
            for (model, n) in zip(models, sampleCounts) {
                let w = Double(n) / total
                let v = model[keyPath: part].values
                for i in sum.indices { sum[i] += w * Double(v[i]) }
            }
            for i in sum.indices { target.values[i] = Float(sum[i]) }
        }
        return out
    }

    /// The ensemble's mean logits `[N, classes]` on `images` `[N] + input shape`.
    public static func ensembleLogits(_ models: [Model], _ images: Tensor) -> Tensor {
        var sum: [Float] = []
        for model in models {
            let logits = model.forward(images, training: false)
            logits.withUnsafeBufferPointer { l in
                if sum.isEmpty { sum = Array(l) } else { for i in sum.indices { sum[i] += l[i] } }
            }
        }
        let scale = 1 / Float(models.count)
        let first = models[0].outputShape
        return Tensor(shape: Shape([images.shape[0]] + first.dims), scalars: sum.map { $0 * scale })
    }

    /// Accuracy and loss of the ensemble (mean logits, as the FuseFL paper's baseline) on `test`.
    public static func evaluateEnsemble(
        _ models: [Model], on test: LabeledDataset, batchSize: Int
    ) throws
        -> PassStatistics
    {
        let clock = ContinuousClock()
        let started = clock.now
        let loss = SoftmaxCrossEntropy()
        var images = Tensor(shape: [0])
        var labels: [Int32] = []
        var total = 0.0
        var correct = 0
        var start = 0
        while start < test.count {
            let n = min(batchSize, test.count - start)
            test.copyBatch(start: start, count: n, images: &images, labels: &labels)
            total +=
                Double(
                    try loss.evaluate(logits: ensembleLogits(models, images), labels: labels, computeGradient: false))
                * Double(n)
            correct += loss.correct
            start += n
        }
        return PassStatistics(
            loss: total / Double(max(test.count, 1)), accuracy: Double(correct) / Double(max(test.count, 1)),
            samples: test.count, seconds: (clock.now - started).seconds)
    }

    /// FedDF (Lin et al., NeurIPS 2020): the FedAvg model distilled from the ensemble's mean
    /// logits on the unlabeled images `unlabeled` (their labels are not read). Adam at the
    /// setting's rate under cosine annealing over its steps, the KL loss at its temperature, the
    /// gradient's norm clipped, batches drawn in epochs of a fresh order from stream
    /// `feddf/distill` of `seed`; a fixed number of steps (the official code's early stopping
    /// needs a labeled validation set, which one-shot FL does not have).
    public func distill(
        _ setting: OneShotConfig.Distillation, unlabeled: LabeledDataset, seed: UInt64, evaluationBatch: Int = 500
    ) throws -> Model {
        let student = try average()
        let classes = student.outputShape.count
        // The teachers' mean logits of every unlabeled image, once.
        var teacher = [Float](repeating: 0, count: unlabeled.count * classes)
        var images = Tensor(shape: [0])
        var labels: [Int32] = []
        var start = 0
        while start < unlabeled.count {
            let n = min(evaluationBatch, unlabeled.count - start)
            unlabeled.copyBatch(start: start, count: n, images: &images, labels: &labels)
            Self.ensembleLogits(models, images).withUnsafeBufferPointer { l in
                for i in 0..<l.count { teacher[start * classes + i] = l[i] }
            }
            start += n
        }
        let kd = DistillationLoss(temperature: Float(setting.temperature))
        let adam = Adam(learningRate: Float(setting.learningRate))
        let schedule = LearningRateSchedule.cosine(totalSteps: setting.steps)
        var rng = SeededRNG(seed: seed, stream: "feddf/distill")
        var order = Array(0..<unlabeled.count)
        var position = order.count
        var targets = Tensor(shape: [0])
        let params = student.parameters
        for step in 0..<setting.steps {
            if position >= order.count {
                rng.shuffle(&order)
                position = 0
            }
            let n = min(setting.batchSize, order.count - position)
            let rows = order[position..<(position + n)]
            position += n
            unlabeled.copyBatch(indices: rows, images: &images, labels: &labels)
            targets.prepareForOverwrite(shape: [n, classes])
            targets.withUnsafeMutableBufferPointer { t in
                for (k, r) in rows.enumerated() {
                    for j in 0..<classes { t[k * classes + j] = teacher[r * classes + j] }
                }
            }
            params.zeroGradients()
            try kd.evaluate(student: student.forward(images, training: true), teacher: targets)
            student.backward(kd.gradient)
            var norm = 0.0
            for g in params.gradients { norm += Double(g) * Double(g) }
            norm = norm.squareRoot()
            if norm > setting.clipNorm {
                let scale = Float(setting.clipNorm / norm)
                for i in params.gradients.indices { params.gradients[i] *= scale }
            }
            adam.learningRate = schedule.rate(base: Float(setting.learningRate), step: step)
            adam.step(params)
        }
        return student
    }
}
