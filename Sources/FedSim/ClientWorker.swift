import FedCore
import FedData
import FedNN
import FedTensor

/// What one client's local training produced, before the server sees it.
struct ClientResult: Sendable {
    var clientID: Int
    /// Size of the update as sent (the dense or compressed payload, plus SCAFFOLD's control delta when present).
    var payloadBytes: Int
    /// The coordinates a sparse payload contained (OPWA only); nil when it contained every one.
    var coverage: [UInt32]? = nil
    /// Why the server could not accept the payload, if it could not.
    var rejection: String?
    var sampleCount: Int
    var samplesProcessed: Int
    var steps: Int
    var trainLoss: Double
    var controlDelta: [Float]?
    var newClientControl: [Float]?
    /// Wall seconds this client's local training took on its worker.
    var computeSeconds: Double
}

/// One worker thread's reusable state: a model replica, its optimizer and trainer, batch buffers.
/// A worker trains many clients in turn, so memory grows with workers, not clients. Each client
/// starts from the global weights with a fresh optimizer and its own random stream, so the
/// result does not depend on which worker runs it.
final class ClientWorker: @unchecked Sendable {
    let model: Model
    let optimizer: SGD
    let trainer: Trainer
    private var images = Tensor(shape: [0])
    private var labels: [Int32] = []
    private var order: [Int] = []
    private var delta: [Float]
    private var payload: [UInt8] = []

    init(config: ExperimentConfig) throws {
        model = try ModelZoo.make(config.model, seed: config.seed)
        optimizer = SGD(
            learningRate: Float(config.local.learningRate), momentum: Float(config.local.momentum),
            weightDecay: Float(config.local.weightDecay))
        trainer = Trainer(model: model, optimizer: optimizer)
        delta = [Float](repeating: 0, count: model.parameterCount)
    }

    /// Loads `global` and evaluates test batches `first`, `first + stride`, … of `batchSize` images on
    /// this thread; returns each batch's summed loss and number correct, in batch order.
    func evaluate(
        global: UnsafeBufferPointer<Float>, data: LabeledDataset, batchSize: Int, first: Int, stride: Int
    ) throws -> [(batch: Int, loss: Double, correct: Int)] {
        model.parameters.values.baseAddress!.update(from: global.baseAddress!, count: global.count)
        let loss = SoftmaxCrossEntropy()
        var out: [(batch: Int, loss: Double, correct: Int)] = []
        var b = first
        while b * batchSize < data.count {
            let n = min(batchSize, data.count - b * batchSize)
            data.copyBatch(start: b * batchSize, count: n, images: &images, labels: &labels)
            let logits = model.forward(images, training: false)
            let mean = try loss.evaluate(logits: logits, labels: labels, computeGradient: false)
            out.append((b, Double(mean) * Double(n), loss.correct))
            b += stride
        }
        return out
    }

    /// Trains `client` on `indices` of `data` for one round starting from `global`, then sends the
    /// update: encodes it (densely, or through `uplink`) and decodes it, as the server would on
    /// receipt, into `received` (doing the server's decoding here spreads it over the workers).
    func train(
        client: Int, indices: [Int], data: LabeledDataset, global: UnsafeBufferPointer<Float>, config: ExperimentConfig,
        round: Int, rule: any ClientRule, uplink: Uplink?, received: UnsafeMutableBufferPointer<Float>
    ) throws -> ClientResult {
        let clock = ContinuousClock()
        let started = clock.now
        let params = model.parameters
        params.values.baseAddress!.update(from: global.baseAddress!, count: global.count)
        optimizer.reset()
        rule.beginRound(global: global)
        trainer.gradientHook = { p in rule.adjustGradients(p.gradients, parameters: UnsafeBufferPointer(p.values)) }
        var rng = SeededRNG(seed: config.seed, stream: "client/\(client)/round/\(round)")
        let bs = config.local.batchSize
        let stepsPerEpoch = (indices.count + bs - 1) / bs
        let totalSteps = config.local.steps ?? config.local.epochs * stepsPerEpoch
        var steps = 0
        var processed = 0
        var lossSum: Double = 0
        order = indices
        while steps < totalSteps {
            rng.shuffle(&order)
            var start = 0
            while start < order.count && steps < totalSteps {
                let n = min(bs, order.count - start)
                data.copyBatch(indices: order[start..<(start + n)], images: &images, labels: &labels)
                lossSum += Double(try trainer.step(images: images, labels: labels)) * Double(n)
                processed += n
                steps += 1
                start += n
            }
        }
        trainer.gradientHook = nil
        let values = UnsafeBufferPointer(params.values)
        let controlDelta = rule.endRound(parameters: values, steps: steps, learningRate: optimizer.learningRate)
        delta.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { d[i] = values[i] - global[i] }
        }
        var rejection: String?
        var bytes = 0
        var coverage: [UInt32]?
        if let uplink {
            // A non-finite update never reaches the codec, so it cannot poison the error-feedback memory.
            if delta.withUnsafeBufferPointer({ VectorKernels.allFinite($0) }) {
                do {
                    (bytes, coverage) = try delta.withUnsafeBufferPointer { try uplink.send($0, into: received) }
                } catch {
                    rejection = "\(error)"
                }
            } else {
                rejection = "update contains NaN or infinite values"
                bytes = DensePayload.size(count: delta.count)
            }
        } else {
            delta.withUnsafeBufferPointer { DensePayload.encode($0, into: &payload) }
            bytes = payload.count
            do {
                try DensePayload.decode(payload, into: received)
            } catch {
                rejection = "\(error)"
            }
        }
        let controlBytes = controlDelta == nil ? 0 : DensePayload.size(count: delta.count)
        return ClientResult(
            clientID: client, payloadBytes: bytes + controlBytes, coverage: coverage, rejection: rejection,
            sampleCount: indices.count, samplesProcessed: processed, steps: steps,
            trainLoss: processed > 0 ? lossSum / Double(processed) : 0, controlDelta: controlDelta,
            newClientControl: (rule as? ScaffoldClientRule)?.clientControl,
            computeSeconds: (clock.now - started).seconds)
    }
}
