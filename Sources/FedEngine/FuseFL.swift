import FedCore
import FedData
import FedNN
import FedTensor

/// FuseFL's settings shared by its clients and server.
public struct FuseFLSetup: Sendable {
    public var model: String
    public var blocks: Int
    public var columns: Int
    public var width: Int
    public var adaptor: FusedNetwork.Adaptor
    public var classes: Int
    public var seed: UInt64

    public init(
        model: String, blocks: Int, columns: Int, width: Int, adaptor: FusedNetwork.Adaptor, classes: Int = 10,
        seed: UInt64
    ) {
        self.model = model
        self.blocks = blocks
        self.columns = columns
        self.width = width
        self.adaptor = adaptor
        self.classes = classes
        self.seed = seed
    }

    /// The network cut into blocks at the column width.
    public func network() throws -> BlockNetwork {
        try ModelZoo.blocks(model, count: blocks, width: width, classes: classes)
    }

    /// The metadata key of a fused model's safetensors file that describes its fusion.
    public static let metadataKey = "fedswift.fusefl"

    /// The fusion as text for the model file's metadata: `model=resnet blocks=2 columns=5 width=8
    /// adaptor=conv classes=10`.
    public var metadataValue: String {
        "model=\(model) blocks=\(blocks) columns=\(columns) width=\(width) adaptor=\(adaptor.rawValue) classes=\(classes)"
    }

    /// The fusion a model file's metadata describes (``metadataValue``).
    /// - Throws: `ModelError.invalidConfiguration` naming what is missing or malformed.
    public init(metadata text: String) throws {
        var fields: [String: String] = [:]
        for part in text.split(separator: " ") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else {
                throw ModelError(.invalidConfiguration, "FuseFL metadata: '\(part)' is not key=value")
            }
            fields[kv[0]] = kv[1]
        }
        func number(_ key: String) throws -> Int {
            guard let v = fields[key].flatMap(Int.init), (1...65_536).contains(v) else {
                throw ModelError(.invalidConfiguration, "FuseFL metadata: '\(key)' is missing or not a count")
            }
            return v
        }
        guard let model = fields["model"], let adaptor = fields["adaptor"].flatMap(FusedNetwork.Adaptor.init) else {
            throw ModelError(
                .invalidConfiguration, "FuseFL metadata needs 'model' and 'adaptor' (conv or mean): '\(text)'")
        }
        let width = try number("width")
        guard width >= 2 else {
            throw ModelError(.invalidConfiguration, "FuseFL metadata: a width of \(width) channels")
        }
        self.init(
            model: model, blocks: try number("blocks"), columns: try number("columns"), width: width,
            adaptor: adaptor, classes: try number("classes"), seed: 0)
    }

    /// The fused model of a safetensors file written by `fedswift oneshot`, its weights loaded.
    /// - Throws: `ModelError` if the file has no FuseFL metadata or its tensors do not fit it.
    public static func fusedModel(from file: SafeTensorsFile) throws -> Model {
        guard let text = file.metadata[metadataKey] else {
            throw ModelError(.invalidConfiguration, "the file has no '\(metadataKey)' metadata: not a FuseFL model")
        }
        let setup = try FuseFLSetup(metadata: text)
        let network = try setup.network()
        // Check the metadata against the file before building: the columns of the first block,
        // its tensors' shapes (which fix the width), and the last block.
        func column(_ name: String) -> Int? {
            guard name.hasPrefix("blocks.0.columns.") else { return nil }
            return Int(name.dropFirst("blocks.0.columns.".count).prefix { $0 != "." })
        }
        let mismatch = ModelError(.shapeMismatch, "the file's tensors do not fit its FuseFL metadata '\(text)'")
        guard Set(file.names.compactMap(column)) == Set(0..<setup.columns),
            file.names.contains(where: { $0.hasPrefix("blocks.\(setup.blocks - 1).columns.") }),
            !file.names.contains(where: { $0.hasPrefix("blocks.\(setup.blocks).") })
        else { throw mismatch }
        let one = try Model(network.blocks[0].make(), inputShape: network.inputShape)
        for (name, t) in one.stateDict() where file["blocks.0.columns.0.block." + name]?.shape != t.shape {
            throw mismatch
        }
        let model = try FusedNetwork.fusedModel(network, columns: setup.columns, adaptor: setup.adaptor)
        try model.loadStateDict(file.tensors, strict: true)
        return model
    }
}

/// A FuseFL client (Tang et al., NeurIPS 2024): it keeps its own model between stages.
///
/// - Stage s (0..<K): it builds its stage-s model (the fused blocks 0..<s it received, frozen; a
///   new adaptor in front of its own block s; its own later blocks and classifier as it left
///   them), trains it for its share of the epochs, and uploads block s with its adaptor (the
///   last stage: also its classifier). The message of stage s > 0 is fused block s − 1.
/// - Calibration (stage K): the message is fused block K − 1; it uploads the per-class count,
///   mean and covariance of the fused model's summed features over its data (``ClassGaussians``).
///
/// Every client starts from the same weights (stream `init/…` of the run's seed, as a deep copy
/// of one model would), and shuffles from its own stream `fusefl/client/<id>/stage/<s>`.
public final class FuseFLClient {
    public let id: Int
    public let setup: FuseFLSetup
    let network: BlockNetwork
    let training: ExperimentConfig.LocalTraining
    let epochsPerStage: Int
    let data: LabeledDataset
    let indices: [Int]
    private var model: Model?
    /// The fused blocks received so far.
    private var fused: [(name: String, tensor: Tensor)] = []

    public init(
        id: Int, setup: FuseFLSetup, training: ExperimentConfig.LocalTraining, epochsPerStage: Int,
        data: LabeledDataset, indices: [Int]
    ) throws {
        self.id = id
        self.setup = setup
        network = try setup.network()
        self.training = training
        self.epochsPerStage = epochsPerStage
        self.data = data
        self.indices = indices
    }

    /// The model of the last stage run (nil before the first).
    public var currentModel: Model? { model }

    /// The next stage this client runs: 0..<K for training, K for the calibration statistics.
    public private(set) var nextStage = 0

    /// Runs training stage `stage` with the server's `message` (empty for stage 0).
    /// - Throws: for a stage out of order, a malformed message, or training errors; the client is
    ///   unchanged then.
    public func train(stage: Int, message: [UInt8]) throws -> OneShotUpload {
        guard stage == nextStage, stage < setup.blocks else {
            throw ModelError(.invalidInput, "client \(id): asked for stage \(stage + 1), its next is \(nextStage + 1)")
        }
        let clock = ContinuousClock()
        let started = clock.now
        let next = try FusedNetwork.stageModel(
            network, stage: stage, columns: setup.columns, adaptor: setup.adaptor, seed: setup.seed)
        var received: [(name: String, tensor: Tensor)] = []
        if stage > 0 {
            received = try OneShotMessage.decode(
                message, expecting: OneShotMessage.layout(of: next, prefix: "blocks.\(stage - 1).columns."),
                from: "the server's fused block \(stage - 1)")
        }
        var state = fused + received
        if let model {
            // Its own blocks after the one just fused, and its classifier, as it trained them.
            state += model.stateDict().filter { entry in
                entry.name.hasPrefix("classifier.")
                    || (stage..<setup.blocks).contains { entry.name.hasPrefix("blocks.\($0).block.") }
            }
        }
        // Everything but the new adaptor comes from the fused blocks or the client's last model.
        let loaded = Set(state.map(\.name))
        if stage > 0,
            let missing = next.stateDict().first(where: {
                !loaded.contains($0.name) && !$0.name.hasPrefix("blocks.\(stage).adaptor.")
            })
        {
            throw ModelError(.missingParameter, "client \(id): stage \(stage + 1) has no weights for '\(missing.name)'")
        }
        try next.loadStateDict(state, strict: false)
        let optimizer = SGD(
            learningRate: Float(training.learningRate), momentum: Float(training.momentum),
            weightDecay: Float(training.weightDecay))
        let trainer = Trainer(model: next, optimizer: optimizer)
        var rng = SeededRNG(seed: setup.seed, stream: "fusefl/client/\(id)/stage/\(stage)")
        let stats = try ComputeThreads.withThreads(1) {
            try trainer.trainLocal(
                on: data, indices: indices, epochs: epochsPerStage, batchSize: training.batchSize, rng: &rng)
        }
        guard VectorKernels.allFinite(UnsafeBufferPointer(next.parameters.values)) else {
            throw ModelError(.invalidInput, "client \(id): training at stage \(stage) made the model non-finite")
        }
        fused += received
        model = next
        nextStage = stage + 1
        var upload = next.stateDict().filter { $0.name.hasPrefix("blocks.\(stage).") }
        if stage == setup.blocks - 1 { upload += next.stateDict().filter { $0.name.hasPrefix("classifier.") } }
        return OneShotUpload(
            payload: try OneShotMessage.encode(upload), samplesProcessed: stats.samples, steps: stats.steps,
            trainLoss: stats.loss, computeSeconds: (clock.now - started).seconds)
    }

    /// The calibration stage: per-class moments of the fused model's features over the client's
    /// data, given the last fused block in `message`. The virtual clock charges its transfers, not
    /// its forward pass over the data (about 1/24 of FuseFL's 8 training epochs' compute), as it
    /// charges no method for the server's work.
    public func calibrationStatistics(message: [UInt8], batchSize: Int = 500) throws -> OneShotUpload {
        guard nextStage == setup.blocks else {
            throw ModelError(.invalidInput, "client \(id): calibration comes after the \(setup.blocks) stages")
        }
        let clock = ContinuousClock()
        let started = clock.now
        let features = try FusedNetwork.fusedModel(
            network, columns: setup.columns, adaptor: setup.adaptor, withClassifier: false)
        let last = try OneShotMessage.decode(
            message,
            expecting: OneShotMessage.layout(of: features, prefix: "blocks.\(setup.blocks - 1).columns."),
            from: "the server's fused block \(setup.blocks - 1)")
        try features.loadStateDict(fused + last, strict: true)
        var moments = ClassGaussians.Accumulator(classes: setup.classes, features: network.features)
        var images = Tensor(shape: [0])
        var labels: [Int32] = []
        try ComputeThreads.withThreads(1) {
            var start = 0
            while start < indices.count {
                let n = min(batchSize, indices.count - start)
                data.copyBatch(indices: indices[start..<(start + n)], images: &images, labels: &labels)
                try moments.add(features.forward(images, training: false), labels: labels)
                start += n
            }
        }
        let g = ClassGaussians(accumulating: moments)
        return OneShotUpload(
            payload: try OneShotMessage.encode(FuseFLServer.tensors(of: g)), samplesProcessed: 0,
            computeSeconds: (clock.now - started).seconds)
    }
}

/// FuseFL's server: it fuses each stage's uploaded blocks into the fused model, averages the
/// classifiers after the last stage and, with calibration, retrains the classifier on virtual
/// features drawn from the clients' pooled class Gaussians (CCVR: `samples` per class, one pass
/// of SGD at `learningRate`, batch `batchSize`).
public final class FuseFLServer {
    public let setup: FuseFLSetup
    let network: BlockNetwork
    /// The fused model, filled in block by block.
    public let model: Model

    public init(setup: FuseFLSetup) throws {
        self.setup = setup
        network = try setup.network()
        model = try FusedNetwork.fusedModel(network, columns: setup.columns, adaptor: setup.adaptor, seed: setup.seed)
    }

    /// Takes stage `stage`'s uploads (one per client, indexed by client 0..<M) and returns the
    /// message of the next stage: the fused block `stage`, all columns.
    /// - Throws: `ModelError` naming the client whose upload is malformed; nothing is changed then.
    public func fuse(stage: Int, uploads: [[UInt8]]) throws -> [UInt8] {
        guard stage == fusedStages, stage < setup.blocks else {
            throw ModelError(
                .invalidInput, "stage \(stage + 1) cannot be fused after \(fusedStages) of \(setup.blocks)")
        }
        guard uploads.count == setup.columns else {
            throw ModelError(.invalidInput, "stage \(stage + 1): \(uploads.count) uploads for \(setup.columns) columns")
        }
        let last = stage == setup.blocks - 1
        let reference = try FusedNetwork.stageModel(
            network, stage: stage, columns: setup.columns, adaptor: setup.adaptor, seed: setup.seed)
        var expected = OneShotMessage.layout(of: reference, prefix: "blocks.\(stage).")
        if last { expected += OneShotMessage.layout(of: reference, prefix: "classifier.") }
        let decoded = try uploads.enumerated().map { m, bytes in
            try OneShotMessage.decode(bytes, expecting: expected, from: "client \(m)'s block \(stage)")
        }
        var fusedBlock: [(name: String, tensor: Tensor)] = []
        for (m, tensors) in decoded.enumerated() {
            for (name, t) in tensors where !name.hasPrefix("classifier.") {
                fusedBlock.append((FusedNetwork.columnName(name, block: stage, column: m)!, t))
            }
        }
        try model.loadStateDict(fusedBlock, strict: false)
        if last {
            // The plain mean of the clients' classifiers, as the official code averages them.
            var averaged: [(name: String, tensor: Tensor)] = []
            for (name, shape) in expected where name.hasPrefix("classifier.") {
                var sum = [Double](repeating: 0, count: shape.count)
                for tensors in decoded {
                    let t = tensors.first { $0.name == name }!.tensor.scalars
                    for i in sum.indices { sum[i] += Double(t[i]) }
                }
                averaged.append((name, Tensor(shape: shape, scalars: sum.map { Float($0 / Double(decoded.count)) })))
            }
            try model.loadStateDict(averaged, strict: false)
        }
        fusedStages = stage + 1
        return try OneShotMessage.encode(fusedBlock)
    }

    /// The stages fused so far.
    public private(set) var fusedStages = 0

    /// The classifier's tensors in the fused model.
    public var classifierMessage: [UInt8] {
        get throws { try OneShotMessage.encode(model.stateDict().filter { $0.name.hasPrefix("classifier.") }) }
    }

    /// CCVR: pools the clients' class moments and trains the classifier one pass over `samples`
    /// virtual features per class.
    /// - Throws: `ModelError` naming the client whose statistics are malformed.
    @discardableResult
    public func calibrate(
        uploads: [[UInt8]], samples: Int, learningRate: Double, batchSize: Int
    ) throws -> ClassGaussians {
        let (c, f) = (setup.classes, network.features)
        let layout: [(name: String, shape: Shape)] = [
            ("counts", [c]), ("means", [c, f]), ("covariances", [c, f, f]),
        ]
        guard fusedStages == setup.blocks, uploads.count == setup.columns else {
            throw ModelError(
                .invalidInput, "calibration needs all \(setup.blocks) stages fused and one upload per client")
        }
        let parts = try uploads.enumerated().map { m, bytes in
            let sender = "client \(m)'s feature statistics"
            let t = try OneShotMessage.decode(bytes, expecting: layout, from: sender)
            let counts = t[0].tensor.scalars
            guard counts.allSatisfy({ $0 >= 0 && $0 == $0.rounded() && $0 < 16_777_216 }) else {
                throw ModelError(.invalidInput, "\(sender): counts must be whole and non-negative")
            }
            let g = ClassGaussians(
                classes: c, features: f, counts: counts.map { Int($0) }, means: t[1].tensor.scalars.map(Double.init),
                covariances: t[2].tensor.scalars.map(Double.init))
            if let problem = g.implausibility { throw ModelError(.invalidInput, "\(sender): \(problem)") }
            return g
        }
        guard parts.contains(where: { $0.counts.contains { $0 > 0 } }) else {
            throw ModelError(.invalidInput, "calibration: no client reported any sample")
        }
        let pooled = ClassGaussians.pooled(parts)
        var rng = SeededRNG(seed: setup.seed, stream: "fusefl/calibration")
        let (virtual, labels) = pooled.sample(perClass: samples, rng: &rng)
        let data = try LabeledDataset(images: virtual, labels: labels, classCount: c)
        let head = try Model(
            Sequential([("flatten", Flatten()), ("classifier", network.classifier())]), inputShape: [f, 1, 1])
        try head.loadStateDict(model.stateDict().filter { $0.name.hasPrefix("classifier.") }, strict: true)
        let trainer = Trainer(model: head, optimizer: SGD(learningRate: Float(learningRate)))
        _ = try trainer.trainLocal(
            on: data, indices: Array(0..<data.count), epochs: 1, batchSize: batchSize, rng: &rng)
        guard VectorKernels.allFinite(UnsafeBufferPointer(head.parameters.values)) else {
            throw ModelError(.invalidInput, "calibration made the classifier non-finite; it is left as averaged")
        }
        try model.loadStateDict(head.stateDict(), strict: false)
        return pooled
    }

    /// A client's class moments as tensors: `counts` `[C]`, `means` `[C, F]`, `covariances` `[C, F, F]`.
    static func tensors(of g: ClassGaussians) -> [(name: String, tensor: Tensor)] {
        [
            ("counts", Tensor(shape: [g.classes], scalars: g.counts.map(Float.init))),
            ("means", Tensor(shape: [g.classes, g.features], scalars: g.means.map { Float($0) })),
            (
                "covariances",
                Tensor(shape: [g.classes, g.features, g.features], scalars: g.covariances.map { Float($0) })
            ),
        ]
    }
}
