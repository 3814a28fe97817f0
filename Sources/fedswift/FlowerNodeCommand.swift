import ArgumentParser
import FedData
import FedEngine
import FedFlower
import FedNN
import FedTensor
import Foundation
import Logging

extension FedSwiftCommand {
    /// A native node of a Flower federation.
    struct FlowerNodeCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "flower-node",
            abstract: "Join a Flower federation (flwr 1.41 SuperLink) as a native SuperNode that trains in Swift.",
            discussion: """
                Registers (or, with a key the operator registered, only activates) at the SuperLink's Fleet API, \
                heartbeats, and answers the ServerApp's train and evaluate messages with the FedSwift model: \
                ArrayRecords under PyTorch's state_dict names, metrics train_loss, eval_loss, eval_acc and \
                num-examples. Trains on a Fashion-MNIST partition (the split `fedswift partition` makes from --seed) \
                or on IDX files of its own. The ServerApp's ConfigRecord may set lr, momentum, weight-decay, \
                local-epochs and batch-size per round. Runs until SIGINT or SIGTERM, then deactivates.
                """)

        @Option(help: "The SuperLink's Fleet API, HOST:PORT (flower-superlink serves it on 127.0.0.1:8000).")
        var superlink: String
        @Flag(help: "Plain HTTP, for a SuperLink started with --insecure.") var insecure = false
        @Option(help: "PEM file of the CA certificates to trust for the SuperLink (default: the system's).")
        var rootCertificates: String?
        @Option(
            help:
                "The node's P-384 key (PEM, or an unencrypted OpenSSH key); without it a fresh key each start. `fedswift flower-key` makes one."
        )
        var key: String?
        @Option(help: "Model: \(ModelZoo.usage).") var model = "cnn"
        @Option(help: "Directory of the Fashion-MNIST IDX files.") var dataDir: String?
        @Option(help: "This node's part of Fashion-MNIST's training set, INDEX/COUNT (e.g. 0/2).") var partition = "0/1"
        @Option(help: "How the training set is split: iid or dirichlet.") var partitionScheme = "iid"
        @Option(help: "Dirichlet concentration (partition-scheme dirichlet).") var alpha = 0.5
        @Option(help: "Seed of the split, the initialisation and the shuffling.") var seed: UInt64 = 0
        @Option(help: "Training images of its own, an IDX file [N, 28, 28] (gzipped or not), with --labels.")
        var images: String?
        @Option(help: "Training labels of its own, an IDX file [N].") var labels: String?
        @Option(help: "The part of the Fashion-MNIST test set it evaluates on, INDEX/COUNT.") var testShard = "0/1"
        @Option(help: "Local epochs (unless the ServerApp sends local-epochs).") var epochs = 1
        @Option(help: "Mini-batch size (unless the ServerApp sends batch-size).") var batchSize = 32
        @Option(help: "Learning rate (unless the ServerApp sends lr).") var lr = 0.01
        @Option(help: "SGD momentum (unless the ServerApp sends momentum).") var momentum = 0.0
        @Option(help: "Weight decay (unless the ServerApp sends weight-decay).") var weightDecay = 0.0
        @Option(help: "Seconds between heartbeats promised at activation (10 to 1800).") var heartbeat = 30.0
        @Option(help: "Seconds between polls for messages.") var poll = 1.0
        @Option(help: "Seconds to keep trying while the SuperLink cannot be reached or refuses to activate the node.")
        var patience = 120.0
        @Option(help: "Compute threads for training.") var threads = 1
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
        @OptionGroup var compute: BackendOptions

        func validate() throws {
            guard ModelZoo.isKnown(model) else {
                throw ValidationError("unknown model '\(model)'; choose one of: \(ModelZoo.usage)")
            }
            if insecure && rootCertificates != nil {
                throw ValidationError("--root-certificates is for TLS; leave it out with --insecure")
            }
            guard (10...1800).contains(heartbeat) else {
                throw ValidationError("--heartbeat must be 10 to 1800 seconds")
            }
            guard poll > 0, patience > 0, threads >= 1, epochs >= 1, batchSize >= 1, lr > 0 else {
                throw ValidationError("--poll, --patience, --threads, --epochs, --batch-size and --lr must be positive")
            }
            guard (images == nil) == (labels == nil) else { throw ValidationError("--images and --labels go together") }
        }

        func run() async throws {
            try compute.apply()
            let logger = try makeLogger(label: "fedswift.flower-node", level: logLevel)
            _ = try Serve.address(superlink)
            let (index, count) = try Self.share(partition, option: "--partition")
            let (testIndex, testCount) = try Self.share(testShard, option: "--test-shard")
            let train: LabeledDataset
            if let images, let labels {
                train = try FashionMNIST.loadSplit(imagesPath: images, labelsPath: labels)
            } else {
                let full = try FashionMNIST.load(directory: dataDir).train
                let scheme: PartitionScheme
                switch partitionScheme {
                case "iid": scheme = .iid
                case "dirichlet": scheme = .dirichlet(alpha: alpha)
                default: throw ValidationError("--partition-scheme must be iid or dirichlet")
                }
                let split = try Partitioner.split(
                    labels: full.labels, classes: full.classCount, clients: count, scheme: scheme, seed: seed)
                train = full.subset(indices: split.clientIndices[index])
            }
            let fullTest = try FashionMNIST.loadTest(directory: dataDir)
            let range = ComputeThreads.splitRange(fullTest.count, parts: testCount, index: testIndex)
            let test = fullTest.subset(indices: Array(range))
            let identity = try key.map { try NodeIdentity(contentsOf: $0) } ?? NodeIdentity()
            let client = try FleetClient(
                address: superlink, security: insecure ? .insecure : .tls(rootCertificates: rootCertificates),
                identity: identity)
            let app = try NativeClientApp(
                model: model, train: train, test: test,
                defaults: ExperimentConfig.LocalTraining(
                    epochs: epochs, batchSize: batchSize, learningRate: lr, momentum: momentum, weightDecay: weightDecay
                ),
                seed: seed, client: index)
            var options = FlowerNode.Options()
            options.heartbeatInterval = heartbeat
            options.pollInterval = poll
            options.patience = patience
            options.threads = threads
            let node = FlowerNode(client: client, identity: identity, app: app, options: options, logger: logger)
            let stop = StopSignals()
            say(
                "flower node: \(model) on \(train.count) training and \(test.count) test images, SuperLink \(client.baseURL)"
            )
            try await node.run(shouldStop: { stop.received != 0 })
            say("flower node: answered \(node.answered) messages; stopped")
        }

        /// `INDEX/COUNT` with 0 ≤ INDEX < COUNT.
        static func share(_ text: String, option: String) throws -> (Int, Int) {
            let parts = text.split(separator: "/")
            guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (0..<n).contains(i) else {
                throw ValidationError("\(option) '\(text)' is not INDEX/COUNT with 0 <= INDEX < COUNT")
            }
            return (i, n)
        }
    }

    /// A key for `flower-node --key`.
    struct FlowerKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "flower-key",
            abstract: "Make a P-384 key for a Flower node and print its public key for `flwr supernode register`.",
            discussion: """
                Writes FILE (PEM, PKCS #8, readable by the owner only) unless it exists, and FILE.pub, the public \
                key in OpenSSH's format, which `flwr supernode register FILE.pub` registers at a SuperLink started \
                with --enable-supernode-auth. An existing FILE (PEM or unencrypted OpenSSH) is only read.
                """)

        @Argument(help: "The private key file.") var file: String

        func run() throws {
            let identity: NodeIdentity
            if FileManager.default.fileExists(atPath: file) {
                do {
                    identity = try NodeIdentity(contentsOf: file)
                } catch let error as FlowerError {
                    throw ValidationError(error.description)
                }
            } else {
                identity = NodeIdentity()
                try writeAtomically(Array(identity.privateKeyPEM.utf8), to: file, private: true)
            }
            let line = identity.openSSHPublicKey()
            try writeAtomically(Array((line + "\n").utf8), to: file + ".pub", private: false)
            print(line)
        }
    }

    /// A model's initial weights.
    struct InitModel: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init-model",
            abstract: "Write a model's initial weights (safetensors, PyTorch state_dict names), e.g. for a ServerApp.")

        @Option(help: "Model: \(ModelZoo.usage).") var model = "cnn"
        @Option(help: "Initialisation seed.") var seed: UInt64 = 0
        @Option(help: "Output file.") var out: String

        func run() throws {
            guard ModelZoo.isKnown(model) else {
                throw ValidationError("unknown model '\(model)'; choose one of: \(ModelZoo.usage)")
            }
            let m = try ModelZoo.make(model, seed: seed)
            try SafeTensors.write(
                sources: m.stateDict().map { SafeTensors.Source(name: $0.name, tensor: $0.tensor) },
                metadata: ["format": "pt", "fedswift.model": model, "fedswift.seed": "\(seed)"], to: out)
            print("\(model): \(m.parameterCount) parameters, seed \(seed) -> \(out)")
        }
    }
}

/// Writes `bytes` to `path` atomically; `private` files are readable by their owner only from the start.
func writeAtomically(_ bytes: [UInt8], to path: String, private: Bool) throws {
    let previous = umask(`private` ? 0o077 : 0o022)
    defer { umask(previous) }
    try AtomicFile.write(bytes, to: path)
}
