import ArgumentParser
import FedCore
import FedData
import FedNN
import FedTensor
import Foundation

extension FedSwiftCommand {
    /// Where the time of one training step goes: each top-level layer's forward and backward,
    /// the loss, gradient zeroing and the SGD step, as the mean over timed steps.
    struct BenchLayers: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "layers",
            abstract: "Time each layer's forward and backward in training steps on real batches (mean ms per step).")

        @OptionGroup var common: ModelOptions
        @Option(help: "Mini-batch size.") var batchSize = 32
        @Option(help: "Steps to time, after 20 warm-up steps.") var steps = 200
        @Flag(help: "Print one JSON object.") var json = false

        func validate() throws {
            try common.validateCommon()
            guard batchSize >= 1, steps >= 1 else { throw ValidationError("need --batch-size ≥ 1 and --steps ≥ 1") }
        }

        func run() throws {
            try common.configureCompute()
            let train = try common.loadData().train
            let model = try ModelZoo.make(common.model, seed: 0)
            let layers = (model.root as? Sequential)?.layers ?? [("model", model.root)]
            let loss = SoftmaxCrossEntropy()
            let sgd = SGD(learningRate: 0.01)
            var images = Tensor(shape: [0])
            var labels: [Int32] = []
            // Columns: per layer forward and backward, then loss, zeroing, optimizer.
            var seconds = [Double](repeating: 0, count: 2 * layers.count + 3)
            let clock = ContinuousClock()
            let bs = batchSize
            let n = train.count
            let trainableBefore = layers.indices.map { i in layers[..<i].contains { $0.layer.hasTrainableParameters } }
            for step in 0..<(20 + steps) {
                train.copyBatch(start: (step * bs) % (n - bs), count: bs, images: &images, labels: &labels)
                let timed = step >= 20
                func lap(_ column: Int, _ body: () throws -> Void) rethrows {
                    let start = clock.now
                    try body()
                    if timed { seconds[column] += (clock.now - start).seconds }
                }
                lap(2 * layers.count + 1) { model.parameters.zeroGradients() }
                var x = images
                for (i, entry) in layers.enumerated() {
                    lap(i) { x = entry.layer.forward(x, training: true) }
                }
                let logits = x
                try lap(2 * layers.count) { _ = try loss.evaluate(logits: logits, labels: labels) }
                var g = loss.gradient
                for i in layers.indices.reversed() {
                    lap(layers.count + i) { g = layers[i].layer.backward(g, needsInputGradient: trainableBefore[i]) }
                }
                lap(2 * layers.count + 2) { sgd.step(model.parameters) }
            }
            let ms = seconds.map { 1000 * $0 / Double(steps) }
            let total = ms.reduce(0, +)
            var rows: [(String, Double, Double)] = layers.indices.map {
                (layers[$0].name, ms[$0], ms[layers.count + $0])
            }
            rows.append(("loss", ms[2 * layers.count], 0))
            rows.append(("zero_grad", ms[2 * layers.count + 1], 0))
            rows.append(("sgd_step", ms[2 * layers.count + 2], 0))
            let backend = ComputeBackend.current
            if json {
                try printJSON([
                    "model": common.model, "batch_size": bs, "threads": common.threads, "steps": steps,
                    "backend": backend.rawValue, "isa": backend.isa, "cpu": FedSwiftCommand.Info.cpuModel(),
                    "ms_per_step": total, "samples_per_second": Double(bs) * 1000 / total,
                    "layers": rows.map { ["name": $0.0, "forward_ms": $0.1, "backward_ms": $0.2] },
                ])
                return
            }
            print(
                "\(common.model) batch \(bs), \(common.threads) thread(s), \(backend) (\(backend.isa)): \(fmt(total, 3)) ms per step"
            )
            print("layer         forward ms  backward ms   share")
            for (name, f, b) in rows {
                let label = name.padding(toLength: 12, withPad: " ", startingAt: 0)
                print(
                    "\(label)  \(fmt(f, 3).leftPadded(10))  \(fmt(b, 3).leftPadded(11))  \(fmt(100 * (f + b) / total, 1).leftPadded(5)) %"
                )
            }
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
