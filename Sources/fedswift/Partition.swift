import ArgumentParser
import FedData
import FedEngine

extension FedSwiftCommand {
    /// Shows how a partition scheme divides the training set among clients.
    struct Partition: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Split the Fashion-MNIST training set among federated clients and summarise the split.")

        @Option(help: "Dataset (fmnist).") var dataset = "fmnist"
        @Option(help: ArgumentHelp(dataDirHelp)) var dataDir: String?
        @Option(help: "Number of clients.") var clients = 100
        @Option(help: "Scheme.") var scheme: PartitionScheme.Kind = .dirichlet
        @Option(help: "Dirichlet concentration (dirichlet).") var alpha = 0.5
        @Option(help: "Fewest samples per client (dirichlet).") var minSize = 10
        @Option(help: "Shards per client (shards).") var shardsPerClient = 2
        @Option(help: "Log-normal sigma of client sizes (quantity).") var sigma = 1.0
        @Option(help: "Root seed.") var seed: UInt64 = 0
        @Flag(help: "Print JSON with per-client sizes and class counts instead of the summary.") var json = false

        static let dataDirHelp =
            "Directory of the Fashion-MNIST IDX files "
            + "(default: $FEDSWIFT_FMNIST_DIR or \(FashionMNIST.defaultDirectory))."
        func validate() throws {
            guard dataset == "fmnist" else { throw ValidationError("unknown dataset '\(dataset)'; available: fmnist") }
            guard clients >= 1 else { throw ValidationError("--clients must be at least 1; found \(clients)") }
        }

        var partitionScheme: PartitionScheme {
            PartitionScheme(scheme, alpha: alpha, minSize: minSize, shardsPerClient: shardsPerClient, sigma: sigma)
        }

        func run() throws {
            let labels = try FashionMNIST.load(directory: dataDir).train.labels
            let classes = FashionMNIST.classCount
            let partition = try Partitioner.split(
                labels: labels, classes: classes, clients: clients, scheme: partitionScheme, seed: seed)
            guard json else {
                print("\(dataset), scheme \(partitionScheme), seed \(seed)")
                print(partition.summary(labels: labels, classes: classes))
                return
            }
            let counts = partition.counts.map(String.init).joined(separator: ", ")
            let classCounts = partition.classCounts(labels: labels, classes: classes)
                .map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }
                .joined(separator: ", ")
            print(
                "{\"dataset\": \"\(dataset)\", \"scheme\": \"\(scheme.rawValue)\", \"clients\": \(clients), \"seed\": \(seed), "
                    + "\"alpha\": \(alpha), \"min_size\": \(minSize), \"shards_per_client\": \(shardsPerClient), "
                    + "\"sigma\": \(sigma), \"counts\": [\(counts)], \"class_counts\": [\(classCounts)]}")
        }
    }
}

extension PartitionScheme.Kind: ExpressibleByArgument {}
