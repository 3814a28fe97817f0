import FedTensor

/// Images with one integer label each, held in memory.
///
/// Batches are copied into caller-owned buffers, so a training loop that keeps its batch tensor
/// and label array allocates nothing per step:
/// ```swift
/// var x = Tensor(shape: [0]), y: [Int32] = []
/// dataset.copyBatch(start: 0, count: 64, images: &x, labels: &y)   // x: [64, C, H, W]
/// ```
public struct LabeledDataset: Sendable {
    /// All images, shaped `[N, C, H, W]`.
    public let images: Tensor

    /// One label per image, each in `0..<classCount`.
    public let labels: [Int32]

    /// Number of classes; labels are below it.
    public let classCount: Int

    /// Number of samples `N`.
    public var count: Int { labels.count }

    /// The shape of one sample, `[C, H, W]`.
    public var sampleShape: Shape { Shape(Array(images.shape.dims.dropFirst())) }

    /// Number of floats in one sample, `C * H * W`.
    public var sampleSize: Int { sampleShape.count }

    /// A dataset of `images` shaped `[N, C, H, W]` and `N` `labels` in `0..<classCount`.
    ///
    /// - Throws: ``DataError`` `shapeMismatch` if `images` is not rank 4, `countMismatch` if the
    ///   label count differs from `N`, `labelOutOfRange` if a label is negative or too large.
    public init(images: Tensor, labels: [Int32], classCount: Int) throws {
        guard images.shape.rank == 4 else {
            throw DataError(
                code: .shapeMismatch, message: "images must be shaped [N, C, H, W]; found \(images.shape)")
        }
        guard images.shape[0] == labels.count else {
            throw DataError(
                code: .countMismatch,
                message: "expected one label per image: \(images.shape[0]) images, \(labels.count) labels")
        }
        guard classCount > 0 else {
            throw DataError(code: .invalidArgument, message: "classCount must be positive; found \(classCount)")
        }
        if let i = labels.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) {
            throw DataError(
                code: .labelOutOfRange,
                message: "label \(labels[i]) at index \(i) is outside 0..<\(classCount)")
        }
        self.init(unchecked: images, labels: labels, classCount: classCount)
    }

    init(unchecked images: Tensor, labels: [Int32], classCount: Int) {
        self.images = images
        self.labels = labels
        self.classCount = classCount
    }

    /// How many samples each class has, indexed by label.
    public func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for label in labels {
            counts[Int(label)] += 1
        }
        return counts
    }

    /// Copies samples `start..<start + count` into `images` (reshaped to `[count, C, H, W]`) and
    /// `labels`, reusing their storage when it is large enough and not shared.
    public func copyBatch(start: Int, count: Int, images: inout Tensor, labels: inout [Int32]) {
        precondition(
            start >= 0 && count >= 0 && start <= self.count - count,
            "batch \(start)..<\(start + count) out of range for \(self.count) samples")
        let size = sampleSize
        prepareBatch(&images, count: count)
        self.images.withUnsafeBufferPointer { source in
            images.withUnsafeMutableBufferPointer { destination in
                guard count > 0, size > 0 else { return }
                destination.baseAddress!.update(from: source.baseAddress! + start * size, count: count * size)
            }
        }
        labels.removeAll(keepingCapacity: true)
        labels.append(contentsOf: self.labels[start..<start + count])
    }

    /// Copies the samples at `indices`, in that order, into `images` (reshaped to
    /// `[indices.count, C, H, W]`) and `labels`, reusing their storage when possible.
    public func copyBatch(indices: UnsafeBufferPointer<Int>, images: inout Tensor, labels: inout [Int32]) {
        let size = sampleSize
        let n = self.count
        prepareBatch(&images, count: indices.count)
        labels.removeAll(keepingCapacity: true)
        labels.reserveCapacity(indices.count)
        self.labels.withUnsafeBufferPointer { sourceLabels in
            self.images.withUnsafeBufferPointer { source in
                images.withUnsafeMutableBufferPointer { destination in
                    for (row, index) in indices.enumerated() {
                        precondition(index >= 0 && index < n, "index \(index) out of range for \(n) samples")
                        if size > 0 {
                            (destination.baseAddress! + row * size).update(
                                from: source.baseAddress! + index * size, count: size)
                        }
                        labels.append(sourceLabels[index])
                    }
                }
            }
        }
    }

    /// Copies the samples at `indices`, in that order, like the `UnsafeBufferPointer` overload.
    public func copyBatch(indices: ArraySlice<Int>, images: inout Tensor, labels: inout [Int32]) {
        indices.withUnsafeBufferPointer { copyBatch(indices: $0, images: &images, labels: &labels) }
    }

    /// A new dataset holding the samples at `indices`, in that order (repeats allowed).
    public func subset(indices: [Int]) -> LabeledDataset {
        var subsetImages = Tensor(uninitializedShape: batchShape(indices.count))
        var subsetLabels: [Int32] = []
        copyBatch(indices: indices[...], images: &subsetImages, labels: &subsetLabels)
        return LabeledDataset(unchecked: subsetImages, labels: subsetLabels, classCount: classCount)
    }

    /// Sizes `buffer` for `n` samples; keeps its existing `Shape` (and so allocates nothing) when it
    /// already has the right one, as it does from the second batch of an epoch on.
    private func prepareBatch(_ buffer: inout Tensor, count n: Int) {
        let current = buffer.shape
        if current.rank == 4 && current[0] == n && current.dims[1...] == images.shape.dims[1...] {
            buffer.prepareForOverwrite(shape: current)
        } else {
            buffer.prepareForOverwrite(shape: batchShape(n))
        }
    }

    private func batchShape(_ n: Int) -> Shape {
        var dims = images.shape.dims
        dims[0] = n
        return Shape(dims)
    }
}
