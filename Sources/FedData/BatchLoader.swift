import FedTensor

/// Iterates over a dataset in mini-batches, optionally in a fresh seeded order each epoch.
///
/// The order of epoch `e` depends only on `(seed, e)`, so runs are reproducible and epochs can be
/// replayed out of sequence. Batches are copied into caller-owned buffers; once they have grown to
/// the batch size, iterating allocates nothing.
/// ```swift
/// var loader = BatchLoader(dataset: train, batchSize: 64, shuffle: true, seed: 42)
/// var x = Tensor(shape: [0]), y: [Int32] = []
/// for epoch in 0..<5 {
///     loader.reset(epoch: epoch)
///     while loader.next(images: &x, labels: &y) > 0 { /* train on x, y */ }
/// }
/// ```
public struct BatchLoader: Sendable {
    /// The dataset batches are drawn from.
    public let dataset: LabeledDataset
    /// Samples per batch (the last batch of an epoch may be smaller unless `dropLast`).
    public let batchSize: Int
    /// Whether each epoch visits the samples in a seeded random order rather than in order.
    public let shuffle: Bool
    /// Root seed of the shuffling.
    public let seed: UInt64
    /// Whether a final batch smaller than `batchSize` is skipped.
    public let dropLast: Bool
    /// The epoch the loader is in (set by ``reset(epoch:)``).
    public private(set) var epoch: Int

    private var order: [Int]
    private var position: Int

    /// A loader positioned at the start of epoch 0.
    ///
    /// - Precondition: `batchSize > 0`.
    public init(dataset: LabeledDataset, batchSize: Int, shuffle: Bool, seed: UInt64, dropLast: Bool = false) {
        precondition(batchSize > 0, "batchSize must be positive; found \(batchSize)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.epoch = 0
        self.order = Array(0..<dataset.count)
        self.position = 0
        reset(epoch: 0)
    }

    /// Number of batches `next` returns per epoch.
    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// Rewinds to the start of `epoch`, with the order drawn from
    /// `SeededRNG(seed: seed, stream: "shuffle/epoch\(epoch)")` when shuffling.
    public mutating func reset(epoch: Int) {
        self.epoch = epoch
        position = 0
        guard shuffle else { return }
        order.withUnsafeMutableBufferPointer { order in
            for i in order.indices { order[i] = i }
        }
        var rng = SeededRNG(seed: seed, stream: "shuffle/epoch\(epoch)")
        rng.shuffle(&order)
    }

    /// Fills `images` (`[k, C, H, W]`) and `labels` with the next batch of the epoch and returns
    /// its size `k`; returns 0, leaving the buffers untouched, once the epoch is exhausted.
    public mutating func next(images: inout Tensor, labels: inout [Int32]) -> Int {
        let remaining = dataset.count - position
        guard remaining > 0, !(dropLast && remaining < batchSize) else { return 0 }
        let k = min(batchSize, remaining)
        if shuffle {
            dataset.copyBatch(indices: order[position..<position + k], images: &images, labels: &labels)
        } else {
            dataset.copyBatch(start: position, count: k, images: &images, labels: &labels)
        }
        position += k
        return k
    }
}
