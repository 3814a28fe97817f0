/// Heap buffer of `Float`s behind a `Tensor`. The only owner of the memory; tensors share it and
/// copy on write.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let capacity: Int

    /// Allocates uninitialised-looking memory (Float is trivial, so any bits are a valid value).
    @usableFromInline
    init(capacity: Int) {
        self.capacity = capacity
        // 64-byte alignment keeps SIMD loads and BLAS packing on cache-line boundaries.
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(capacity, 1) * MemoryLayout<Float>.stride, alignment: 64)
        self.base = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
    }

    @usableFromInline
    convenience init(copying source: UnsafePointer<Float>, count: Int) {
        self.init(capacity: count)
        base.update(from: source, count: count)
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }
}
