import FedCompress
import FedCore
import FedData
import FedNN
import FedTensor

/// A client's side of a round, the same in the simulator and on a networked client: load the
/// model received, train it locally under the strategy's client rule, and encode the change
/// (densely, or with the uplink codec and the client's error feedback).
///
/// One `LocalUpdate` holds a model replica, its optimizer and batch buffers and runs many clients
/// in turn, so memory grows with threads, not clients. Each client starts from the given weights
/// with a fresh optimizer and its own random stream, so the result does not depend on which
/// `LocalUpdate` runs it.
///
/// ```swift
/// let local = try LocalUpdate(model: config.model, seed: config.seed, training: config.local)
/// let reply = try local.run(client: 3, round: 1, data: myData, start: received, seed: config.seed,
///                           rule: strategy.clientAlgorithm.makeRule(broadcast: vectors, state: kept))
/// ```
public final class LocalUpdate: @unchecked Sendable {
    public let model: Model
    public let training: ExperimentConfig.LocalTraining
    /// The evaluation loop on this replica's buffers.
    public let evaluator = Evaluator()
    let optimizer: SGD
    let trainer: Trainer
    private var delta: [Float]

    /// A replica of the zoo model `model` (its initial weights do not matter: every run loads the
    /// weights it is given) trained with plain SGD as `training` says.
    public init(model name: String, seed: UInt64, training: ExperimentConfig.LocalTraining) throws {
        model = try ModelZoo.make(name, seed: seed)
        self.training = training
        optimizer = SGD(
            learningRate: Float(training.learningRate), momentum: Float(training.momentum),
            weightDecay: Float(training.weightDecay))
        trainer = Trainer(model: model, optimizer: optimizer)
        delta = [Float](repeating: 0, count: model.parameterCount)
    }

    /// Trains `client` on the samples `indices` of `data` for one round, starting from `start`,
    /// then encodes its change as `uplink` says (dense float32 when nil) with `memory` as its
    /// error-feedback memory.
    ///
    /// The local data is visited in a fresh order every epoch, drawn from the client's stream
    /// `client/<id>/round/<round>` of `seed`; a step budget (`training.steps`) cuts or extends the
    /// epochs. A non-finite change is not encoded (it cannot reach the error-feedback memory): the
    /// reply then carries the failure and the size of the dense update it would have sent.
    /// - Returns: the reply without its finish time (the pool's to set).
    public func run(
        client: Int, round: Int, indices: [Int], data: LabeledDataset, start: UnsafeBufferPointer<Float>,
        seed: UInt64, rule: any ClientRule, uplink: UplinkPlan? = nil, memory: ErrorFeedbackState? = nil
    ) throws -> ClientReply {
        precondition(start.count == model.parameterCount, "the start model has the wrong number of parameters")
        let clock = ContinuousClock()
        let started = clock.now
        let params = model.parameters
        params.values.baseAddress!.update(from: start.baseAddress!, count: start.count)
        optimizer.reset()
        rule.beginRound(global: start)
        trainer.gradientHook = { p in rule.adjustGradients(p.gradients, parameters: UnsafeBufferPointer(p.values)) }
        if let stepping = rule as? any SteppingClientRule {
            stepping.prepare(seed: seed, stream: "client/\(client)/round/\(round)")
            let model = model
            trainer.stepOverride = { images, labels in try stepping.step(model: model, images: images, labels: labels) }
        }
        defer {
            trainer.gradientHook = nil
            trainer.stepOverride = nil
        }
        var rng = SeededRNG(seed: seed, stream: "client/\(client)/round/\(round)")
        let stats = try trainer.trainLocal(
            on: data, indices: indices, epochs: training.epochs, steps: training.steps, batchSize: training.batchSize,
            rng: &rng)
        let values = UnsafeBufferPointer(params.values)
        let output = rule.endRound(parameters: values, steps: stats.steps, learningRate: optimizer.learningRate)
        delta.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { d[i] = values[i] - start[i] }
        }
        var payload: [UInt8] = []
        var failure: String?
        var bytes: Int
        if let uplink {
            if delta.withUnsafeBufferPointer({ VectorKernels.allFinite($0) }) {
                do {
                    payload = try uplink.feedback.compress(
                        delta, codec: uplink.codec, context: uplink.context, state: memory ?? ErrorFeedbackState()
                    ).payload
                } catch {
                    failure = "\(error)"
                }
                bytes = payload.count
            } else {
                failure = "update contains NaN or infinite values"
                bytes = IdentityCodec.size(count: delta.count)
            }
        } else {
            delta.withUnsafeBufferPointer { IdentityCodec.encode($0, into: &payload) }
            bytes = payload.count
        }
        for name in output.upload.keys { bytes += IdentityCodec.size(count: output.upload[name]!.count) }
        return ClientReply(
            client: client, payload: payload, upload: output.upload, state: output.state, uploadBytes: bytes,
            sampleCount: indices.count, samplesProcessed: stats.samples, steps: stats.steps, trainLoss: stats.loss,
            computeSeconds: (clock.now - started).seconds, failure: failure)
    }
}
