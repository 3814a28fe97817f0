import Dispatch
import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation
import Synchronization

/// One-shot federated learning on simulated clients (`fedswift oneshot`): FuseFL's K stages and
/// calibration, and the one-round baselines (FedAvg, Ensemble, FedDF), which share one round of
/// local training. The clients' data comes from the experiment's partition of the training set
/// without the hold-out (`oneshot.holdout` images, drawn from stream `oneshot/holdout`, kept from
/// every client for every method alike; FedDF distills on them without their labels); their
/// devices and the virtual clock are the simulator's. Bytes are the real payload sizes.
public final class OneShotSimulation {
    public let config: ExperimentConfig
    public let settings: OneShotConfig
    public let partition: Partition
    public let devices: [ClientDevice]
    let train: LabeledDataset
    let test: LabeledDataset
    /// The held-out training images (FedDF's unlabeled data).
    public let holdout: LabeledDataset

    /// One stage of a method: what crossed the network and when it was done.
    public struct Stage: Sendable {
        public var method: String
        public var name: String
        public var bytesUp: Int
        public var bytesDown: Int
        /// Virtual seconds of the stage: its slowest client's download, compute and upload.
        public var virtualSeconds: Double
        public var wallSeconds: Double
        public var trainLoss: Double?
    }

    /// A method's result.
    public struct Result: Sendable {
        public var method: String
        public var accuracy: Double
        public var loss: Double
        public var bytesUp: Int
        public var bytesDown: Int
        public var virtualSeconds: Double
        public var wallSeconds: Double
        /// Parameters of what runs at inference (all M models for the ensemble).
        public var parameters: Int
        /// Bytes of the model file(s) as safetensors.
        public var modelBytes: Int
        /// Wall milliseconds to classify 1,000 test images on one thread.
        public var inferenceMsPer1000: Double
        /// The ensemble's members' own test accuracies, in client order (empty for the others).
        public var memberAccuracies: [Double] = []
    }

    public private(set) var stages: [Stage] = []
    /// The final models by method (the ensemble has none of its own).
    public private(set) var models: [String: Model] = [:]

    public init(config: ExperimentConfig, data: (train: LabeledDataset, test: LabeledDataset)) throws {
        guard let settings = config.oneShot else {
            throw ConfigError(key: "oneshot", "missing: a one-shot run needs the oneshot section")
        }
        self.config = config
        self.settings = settings
        train = data.train
        test =
            config.evaluation.samples.map { data.test.subset(indices: Array(0..<min($0, data.test.count))) }
            ?? data.test
        guard settings.holdout < data.train.count else {
            throw ConfigError(
                key: "oneshot.holdout", "\(settings.holdout) is not fewer than the \(data.train.count) training images")
        }
        var rng = SeededRNG(seed: config.seed, stream: "oneshot/holdout")
        var order = Array(0..<data.train.count)
        rng.shuffle(&order)
        let held = Array(order[..<settings.holdout]).sorted()
        let kept = Array(order[settings.holdout...]).sorted()
        holdout = data.train.subset(indices: held)
        let split = try Partitioner.split(
            labels: kept.map { data.train.labels[$0] }, classes: data.train.classCount,
            clients: config.partition.clients,
            scheme: config.partition.partitionScheme, seed: config.seed)
        partition = Partition(clientIndices: split.clientIndices.map { $0.map { kept[$0] } })
        devices = try DeviceProfiles.make(clients: config.partition.clients, devices: config.devices, seed: config.seed)
    }

    var clients: Int { config.partition.clients }

    /// Runs `work` for every client on the experiment's worker threads (one compute thread each),
    /// largest client first; results in client order.
    func perClient<T: Sendable>(_ work: @escaping @Sendable (Int) throws -> T) throws -> [T] {
        let sizes = partition.counts
        let queue = (0..<clients).sorted { (sizes[$0], $1) > (sizes[$1], $0) }
        let slots = Mutex<[Swift.Result<T, any Error>?]>(Array(repeating: nil, count: clients))
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: min(config.workers, clients)) { _ in
            while true {
                let position = next.add(1, ordering: .relaxed).oldValue
                guard position < queue.count else { break }
                let c = queue[position]
                let r = Swift.Result { try work(c) }
                slots.withLock { $0[c] = r }
            }
        }
        return try slots.withLock { $0 }.map { try $0!.get() }
    }

    /// Records a stage in which every client downloads `download` bytes and sends its upload.
    private func record(
        _ method: String, _ name: String, download: Int, uploads: [OneShotUpload], wall: Double
    ) -> Stage {
        let times = (0..<clients).map {
            devices[$0].roundSeconds(
                downloadBytes: download, uploadBytes: uploads[$0].payload.count,
                samplesProcessed: uploads[$0].samplesProcessed)
        }
        let trained = uploads.filter { $0.steps > 0 }
        let loss =
            trained.isEmpty
            ? nil
            : trained.reduce(0.0) { $0 + $1.trainLoss * Double($1.samplesProcessed) }
                / Double(trained.reduce(0) { $0 + $1.samplesProcessed })
        let stage = Stage(
            method: method, name: name, bytesUp: uploads.reduce(0) { $0 + $1.payload.count },
            bytesDown: download * clients, virtualSeconds: times.max() ?? 0, wallSeconds: wall, trainLoss: loss)
        stages.append(stage)
        return stage
    }

    /// Records the final model's delivery: every client downloads `download` bytes, uploads nothing.
    private func recordDelivery(_ method: String, download: Int, wall: Double) -> Stage {
        record(
            method, "deliver", download: download,
            uploads: [OneShotUpload](repeating: OneShotUpload(payload: []), count: clients), wall: wall)
    }

    /// Test loss and accuracy of `model`, on the experiment's worker threads.
    private func evaluate(_ model: Model) throws -> PassStatistics {
        try ComputeThreads.withThreads(config.workers) {
            try Trainer.evaluate(model, on: test, batchSize: config.evaluation.batchSize)
        }
    }

    /// Runs every method of the experiment and returns their results, in the order listed.
    /// - Parameter progress: called with a line of text after every stage.
    public func run(progress: (String) -> Void = { _ in }) throws -> [Result] {
        var results: [String: Result] = [:]
        let baselines = settings.methods.filter { $0 != .fusefl }
        if !baselines.isEmpty {
            for r in try runBaselines(baselines.map(\.rawValue), progress: progress) { results[r.method] = r }
        }
        if settings.methods.contains(.fusefl) {
            let r = try runFuseFL(progress: progress)
            results[r.method] = r
        }
        return settings.methods.map { results[$0.rawValue]! }
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double { (ContinuousClock.now - start).seconds }

    /// Wall milliseconds per 1,000 test images of `forward` on one thread (the first 1,000 images).
    private func inferenceCost(_ forward: (Tensor) -> Void) -> Double {
        let n = min(1000, test.count)
        var images = Tensor(shape: [0])
        var labels: [Int32] = []
        let start = ContinuousClock.now
        ComputeThreads.withThreads(1) {
            var s = 0
            while s < n {
                let b = min(config.evaluation.batchSize, n - s)
                test.copyBatch(start: s, count: b, images: &images, labels: &labels)
                forward(images)
                s += b
            }
        }
        return seconds(since: start) * 1000 * 1000 / Double(max(n, 1))
    }

    private func runBaselines(_ methods: [String], progress: (String) -> Void) throws -> [Result] {
        let start = ContinuousClock.now
        let (config, train, settings, partition) = (self.config, self.train, self.settings, self.partition)
        let uploads = try perClient { c in
            try LocalModelClient(
                id: c, model: config.model, seed: config.seed, training: config.local, epochs: settings.epochs,
                data: train, indices: partition.clientIndices[c]
            ).train()
        }
        let trained = record("local", "train", download: 0, uploads: uploads, wall: seconds(since: start))
        progress(
            "local training: \(clients) models, \(trained.bytesUp) bytes up, \(String(format: "%.1f", trained.virtualSeconds)) virtual s"
        )
        let server = try OneShotBaselines(
            model: config.model, uploads: uploads.map(\.payload), sampleCounts: partition.counts)
        let modelBytes = uploads[0].payload.count
        var out: [Result] = []
        for method in methods {
            let began = ContinuousClock.now
            let stats: PassStatistics
            let parameters: Int
            let cost: Double
            var delivered = modelBytes
            var storage = modelBytes
            var members: [Double] = []
            switch method {
            case "ensemble":
                stats = try OneShotBaselines.evaluateEnsemble(
                    server.models, on: test, batchSize: config.evaluation.batchSize)
                parameters = server.models.reduce(0) { $0 + $1.parameterCount }
                cost = inferenceCost { _ = OneShotBaselines.ensembleLogits(server.models, $0) }
                members = try server.models.map { try evaluate($0).accuracy }
                // Every client gets the M − 1 models it lacks.
                delivered = modelBytes * (clients - 1)
                storage = modelBytes * clients
            default:
                // Server work on one thread, so results do not depend on any thread setting.
                let model = try ComputeThreads.withThreads(1) {
                    method == "feddf"
                        ? try server.distill(settings.distill, unlabeled: holdout, seed: config.seed)
                        : try server.average()
                }
                models[method] = model
                stats = try evaluate(model)
                parameters = model.parameterCount
                cost = inferenceCost { _ = model.forward($0, training: false) }
            }
            let delivery = recordDelivery(method, download: delivered, wall: seconds(since: began))
            let result = Result(
                method: method, accuracy: stats.accuracy, loss: stats.loss, bytesUp: trained.bytesUp,
                bytesDown: delivery.bytesDown, virtualSeconds: trained.virtualSeconds + delivery.virtualSeconds,
                wallSeconds: trained.wallSeconds + delivery.wallSeconds, parameters: parameters, modelBytes: storage,
                inferenceMsPer1000: cost, memberAccuracies: members)
            progress("\(method): accuracy \(String(format: "%.4f", stats.accuracy))")
            out.append(result)
        }
        return out
    }

    /// FuseFL's column width for this experiment.
    public var fuseFLSetup: FuseFLSetup {
        FuseFLSetup(
            model: config.model, blocks: settings.blocks, columns: clients,
            width: settings.columnWidth(clients: clients), adaptor: settings.adaptor, classes: train.classCount,
            seed: config.seed)
    }

    private func runFuseFL(progress: (String) -> Void) throws -> Result {
        let setup = fuseFLSetup
        let (config, train, settings, partition) = (self.config, self.train, self.settings, self.partition)
        let fuseClients = try (0..<clients).map { c in
            try FuseFLClient(
                id: c, setup: setup, training: config.local, epochsPerStage: settings.epochs / settings.blocks,
                data: train, indices: partition.clientIndices[c])
        }
        nonisolated(unsafe) let shared = fuseClients
        let server = try FuseFLServer(setup: setup)
        var message: [UInt8] = []
        var recorded: [Stage] = []
        for s in 0..<setup.blocks {
            let start = ContinuousClock.now
            let received = message
            let uploads = try perClient { c in try shared[c].train(stage: s, message: received) }
            let next = try server.fuse(stage: s, uploads: uploads.map(\.payload))
            recorded.append(
                record(
                    "fusefl", "stage \(s + 1)", download: message.count, uploads: uploads, wall: seconds(since: start)))
            progress("FuseFL stage \(s + 1) of \(setup.blocks): \(recorded.last!.bytesUp) bytes up")
            message = next
        }
        // Every client now holds the fused blocks but the last: it gets that, and the classifier.
        if settings.calibration {
            let start = ContinuousClock.now
            let received = message
            let uploads = try perClient { c in try shared[c].calibrationStatistics(message: received) }
            _ = try ComputeThreads.withThreads(1) {
                try server.calibrate(
                    uploads: uploads.map(\.payload), samples: settings.calibrationSamples,
                    learningRate: config.local.learningRate, batchSize: config.local.batchSize)
            }
            recorded.append(
                record("fusefl", "calibration", download: message.count, uploads: uploads, wall: seconds(since: start)))
            message = []
        }
        let classifier = try server.classifierMessage
        recorded.append(recordDelivery("fusefl", download: message.count + classifier.count, wall: 0))
        let model = server.model
        models["fusefl"] = model
        let stats = try evaluate(model)
        progress("fusefl: accuracy \(String(format: "%.4f", stats.accuracy))")
        return Result(
            method: "fusefl", accuracy: stats.accuracy, loss: stats.loss,
            bytesUp: recorded.reduce(0) { $0 + $1.bytesUp }, bytesDown: recorded.reduce(0) { $0 + $1.bytesDown },
            virtualSeconds: recorded.reduce(0) { $0 + $1.virtualSeconds },
            wallSeconds: recorded.reduce(0) { $0 + $1.wallSeconds }, parameters: model.parameterCount,
            modelBytes: try SafeTensors.encode(model.stateDict()).count,
            inferenceMsPer1000: inferenceCost { _ = model.forward($0, training: false) })
    }
}
