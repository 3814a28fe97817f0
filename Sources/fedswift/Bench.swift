import ArgumentParser
import FedCore
import FedData
import FedNN
import FedTensor
import Foundation

extension FedSwiftCommand {
    /// Throughput benchmarks, comparable with `benchmarks/torch_train_bench.py`.
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure training, inference and codec throughput.",
            subcommands: [BenchTrain.self, BenchInfer.self, BenchLayers.self, BenchCodec.self])
    }

    /// Training throughput: the same work as `torch_train_bench.py train`.
    struct BenchTrain: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train",
            abstract:
                "Time forward, backward and a plain SGD step (lr 0.01) on consecutive real batches, after 20 warm-up steps."
        )

        @OptionGroup var common: ModelOptions
        @Option(help: "Mini-batch size.") var batchSize = 32
        @Option(help: "Training samples to time.") var samples = 6400
        @Flag(help: "Print one JSON object.") var json = false

        func validate() throws {
            try common.validateCommon()
            guard batchSize >= 1, samples >= batchSize else {
                throw ValidationError("need --samples ≥ --batch-size ≥ 1")
            }
        }

        func run() throws {
            try common.configureCompute()
            let train = try common.loadData().train
            let model = try ModelZoo.make(common.model, seed: 0)
            let trainer = Trainer(model: model, optimizer: SGD(learningRate: 0.01))
            var images = Tensor(shape: [0])
            var labels: [Int32] = []
            let n = train.count
            let bs = batchSize
            func step(_ i: Int) throws {
                train.copyBatch(start: (i * bs) % (n - bs), count: bs, images: &images, labels: &labels)
                try trainer.step(images: images, labels: labels)
            }
            for i in 0..<20 { try step(i) }
            let steps = max(1, samples / bs)
            let clock = ContinuousClock()
            let start = clock.now
            for i in 0..<steps { try step(i) }
            let seconds = (clock.now - start).seconds
            try report(
                json: json, mode: "train", model: common.model, batchSize: bs, threads: common.threads,
                samples: steps * bs, seconds: seconds)
        }
    }

    /// Inference throughput over the test set: median of 3 passes of the evaluation loop after one warm-up pass.
    struct BenchInfer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "infer",
            abstract: "Time inference over the 10,000 test images (median of 3 passes after a warm-up).")

        @OptionGroup var common: ModelOptions
        @Option(help: "Batch size.") var batchSize = 100
        @Flag(help: "Print one JSON object.") var json = false

        func validate() throws {
            try common.validateCommon()
            guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        }

        func run() throws {
            try common.configureCompute()
            let test = try common.loadData().test
            let model = try ModelZoo.make(common.model, seed: 0)
            // The evaluation loop itself (its loss over the logits costs well under 1 % of the forward pass).
            let evaluator = Evaluator()
            var times: [Double] = []
            let clock = ContinuousClock()
            for pass in 0..<4 {
                let start = clock.now
                _ = try evaluator.evaluate(model, on: test, batchSize: batchSize)
                if pass > 0 { times.append((clock.now - start).seconds) }
            }
            let median = times.sorted()[1]
            try report(
                json: json, mode: "infer", model: common.model, batchSize: batchSize, threads: common.threads,
                samples: test.count, seconds: median)
        }
    }
}

private func report(
    json: Bool, mode: String, model: String, batchSize: Int, threads: Int, samples: Int, seconds: Double
) throws {
    let rate = Double(samples) / seconds
    let backend = ComputeBackend.current
    if json {
        try printJSON([
            "impl": "fedswift", "mode": mode, "model": model, "batch_size": batchSize, "threads": threads,
            "samples": samples, "seconds": seconds, "samples_per_second": rate, "backend": backend.rawValue,
            "backend_version": backend.version, "isa": backend.isa, "cpu": FedSwiftCommand.Info.cpuModel(),
        ])
    } else {
        print(
            "\(mode) \(model) batch \(batchSize), \(threads) thread(s), \(backend) (\(backend.isa)): \(fmt(rate, 0)) samples/s "
                + "(\(samples) samples in \(fmt(seconds, 3)) s)")
    }
}
