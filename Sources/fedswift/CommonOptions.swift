import ArgumentParser
import FedData
import FedNN
import FedTensor

/// Options shared by commands that build a model and read Fashion-MNIST.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model: \(ModelZoo.usage).")
    var model = "cnn"

    @Option(help: "Dataset (fmnist).")
    var dataset = "fmnist"

    @Option(
        help:
            "Directory of the Fashion-MNIST IDX files (default: $FEDSWIFT_FMNIST_DIR or \(FashionMNIST.defaultDirectory))."
    )
    var dataDir: String?

    @Option(help: "Compute threads (kernels and the per-sample loops around them).")
    var threads = 1

    @OptionGroup var compute: BackendOptions

    /// Applies `--backend` and `--threads`.
    func configureCompute() throws {
        try compute.apply()
        BLAS.setThreads(threads)
    }

    func validateCommon() throws {
        guard ModelZoo.isKnown(model) else {
            throw ValidationError("unknown model '\(model)'; choose one of: \(ModelZoo.usage)")
        }
        guard dataset == "fmnist" else { throw ValidationError("unknown dataset '\(dataset)'; available: fmnist") }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
    }

    func loadData() throws -> (train: LabeledDataset, test: LabeledDataset) {
        try FashionMNIST.load(directory: dataDir)
    }
}
