import Dispatch
import FedCore
import FedData
import FedNN
import FedTensor
import Synchronization

/// Central evaluation spread over threads: each replica takes interleaved test batches on one
/// thread, and the batch sums are added in batch order, so the result does not depend on the
/// number of replicas. The simulator and the coordinator evaluate with it.
public final class ParallelEvaluator: @unchecked Sendable {
    private let replicas: [Model]
    private let evaluators: [Evaluator]

    /// Evaluates on `replicas` (models of one architecture, used by nothing else meanwhile).
    public init(replicas: [Model]) {
        precondition(!replicas.isEmpty, "at least one replica")
        self.replicas = replicas
        evaluators = replicas.map { _ in Evaluator() }
    }

    /// `threads` replicas of the zoo model `name`.
    public convenience init(model name: String, seed: UInt64, threads: Int) throws {
        self.init(replicas: try (0..<max(1, threads)).map { _ in try ModelZoo.make(name, seed: seed) })
    }

    /// Loss and accuracy of the weights `model` on `test`.
    public func evaluate(
        _ model: UnsafeBufferPointer<Float>, on test: LabeledDataset, batchSize: Int
    ) throws
        -> PassStatistics
    {
        load(model)
        return try evaluateLoaded(on: test, batchSize: batchSize)
    }

    /// Copies the weights `model` into every replica, for ``evaluateLoaded(on:batchSize:)``; the
    /// caller may change `model` as soon as this returns.
    public func load(_ model: UnsafeBufferPointer<Float>) {
        for replica in replicas {
            precondition(replica.parameterCount == model.count, "weights of the replicas' architecture")
            replica.parameters.values.baseAddress!.update(from: model.baseAddress!, count: model.count)
        }
    }

    /// Loss and accuracy on `test` of the weights last given to ``load(_:)``.
    public func evaluateLoaded(on test: LabeledDataset, batchSize: Int) throws -> PassStatistics {
        let start = ContinuousClock.now
        // Each replica and its evaluator are used by one thread of the loop below.
        nonisolated(unsafe) let (replicas, evaluators) = (self.replicas, self.evaluators)
        let parts = Mutex<[Evaluator.Batch]>([])
        let failure = Mutex<(any Error)?>(nil)
        DispatchQueue.concurrentPerform(iterations: replicas.count) { w in
            do {
                let mine = try ComputeThreads.withThreads(1) {
                    try evaluators[w].evaluate(
                        replicas[w], on: test, batchSize: batchSize, first: w, stride: replicas.count)
                }
                parts.withLock { $0 += mine }
            } catch {
                failure.withLock { $0 = error }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return Evaluator.combine(
            parts.withLock { $0 }, samples: test.count, seconds: (ContinuousClock.now - start).seconds)
    }
}
