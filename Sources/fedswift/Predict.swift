import ArgumentParser
import FedData
import FedNN
import FedTensor

extension FedSwiftCommand {
    /// Logits for the first test images, for checking against another implementation.
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the first N test images and the model's logits for them to a safetensors file.")

        @OptionGroup var common: ModelOptions
        @Option(help: "Model weights (safetensors).") var weights: String
        @Option(help: "Number of test images.") var count = 16
        @Option(help: "Output safetensors path (tensors 'input' and 'logits').") var out: String

        func validate() throws {
            try common.validateCommon()
            guard count >= 1 && count <= 10_000 else { throw ValidationError("--count must be in 1...10000") }
        }

        func run() throws {
            try common.configureCompute()
            let model = try loadModel(common.model, weights: weights)
            let test = try common.loadData().test
            var images = Tensor(shape: [0])
            var labels: [Int32] = []
            test.copyBatch(start: 0, count: count, images: &images, labels: &labels)
            let logits = model.forward(images, training: false)
            try SafeTensors.write([("input", images), ("logits", logits)], to: out)
            print("wrote \(count) inputs and logits to \(out)")
        }
    }
}
