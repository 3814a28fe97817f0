import ArgumentParser
import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor

extension FedSwiftCommand {
    /// Test accuracy of a saved model.
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate saved weights on the Fashion-MNIST test set.")

        @OptionGroup var common: ModelOptions
        @Option(help: "Model weights (safetensors).") var weights: String
        @Option(help: "Batch size.") var batchSize = 100

        func validate() throws {
            try common.validateCommon()
            guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        }

        func run() throws {
            try common.configureCompute()
            let model = try loadModel(common.model, weights: weights)
            let test = try common.loadData().test
            let stats = try Trainer.evaluate(model, on: test, batchSize: batchSize)
            print(
                "test accuracy \(fmt(stats.accuracy, 4)) (\(Int((stats.accuracy * Double(stats.samples)).rounded()))/\(stats.samples)), test loss \(fmt(stats.loss, 4))"
            )
        }
    }
}

/// Builds the named model and loads `weights` into it strictly; a FuseFL model file (from
/// `fedswift oneshot`) builds the fused model its metadata describes instead.
func loadModel(_ name: String, weights: String) throws -> Model {
    let file = try SafeTensors.read(path: weights)
    if file.metadata[FuseFLSetup.metadataKey] != nil {
        do {
            return try FuseFLSetup.fusedModel(from: file)
        } catch let error as ModelError {
            throw ValidationError("\(weights): \(error.message)")
        }
    }
    let model = try ModelZoo.make(name)
    do {
        try model.loadStateDict(file.tensors, strict: true)
    } catch let error as ModelError {
        throw ValidationError("\(weights) does not fit model '\(name)': \(error.message)")
    }
    return model
}
