/// A dense, row-major tensor of `Float` with copy-on-write value semantics.
///
/// ```swift
/// var x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
/// let y = x          // shares storage
/// x[0] = 10          // copies; y still reads 1
/// ```
public struct Tensor: @unchecked Sendable {
    public var shape: Shape { _shape }
    @usableFromInline var _shape: Shape
    @usableFromInline var storage: TensorStorage

    /// Number of elements.
    @inlinable public var count: Int { shape.count }

    /// A tensor of the given shape filled with `value`.
    public init(shape: Shape, repeating value: Float = 0) {
        self._shape = shape
        self.storage = TensorStorage(capacity: shape.count)
        storage.base.initialize(repeating: value, count: shape.count)
    }

    /// A tensor of the given shape holding `scalars` in row-major order.
    public init(shape: Shape, scalars: [Float]) {
        precondition(scalars.count == shape.count, "\(scalars.count) scalars for shape \(shape)")
        self._shape = shape
        self.storage = TensorStorage(capacity: shape.count)
        scalars.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: shape.count) }
    }

    /// A tensor whose contents are unspecified; the caller overwrites every element.
    public init(uninitializedShape shape: Shape) {
        self._shape = shape
        self.storage = TensorStorage(capacity: shape.count)
    }

    /// All elements as an array, row-major.
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.base, count: count))
    }

    @inlinable
    public subscript(_ i: Int) -> Float {
        get {
            precondition(i >= 0 && i < count, "index \(i) out of range for \(count) elements")
            return storage.base[i]
        }
        set {
            precondition(i >= 0 && i < count, "index \(i) out of range for \(count) elements")
            makeUnique()
            storage.base[i] = newValue
        }
    }

    /// The same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: Shape) -> Tensor {
        precondition(newShape.count == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t._shape = newShape
        return t
    }

    /// Read access to the elements for the duration of `body`.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// Write access to the elements; copies first if the storage is shared.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            storage = TensorStorage(copying: storage.base, count: count)
        }
    }

    /// Gives this tensor the shape `newShape` with contents about to be overwritten, reusing its
    /// buffer when nothing else references it and it is large enough. Layers call this on their
    /// output buffers so a training step allocates nothing once shapes settle.
    @inlinable
    public mutating func prepareForOverwrite(shape newShape: Shape) {
        if !isKnownUniquelyReferenced(&storage) || storage.capacity < newShape.count {
            storage = TensorStorage(capacity: newShape.count)
        }
        _shape = newShape
    }
}

extension Tensor: Equatable {
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && (lhs.storage === rhs.storage || lhs.scalars == rhs.scalars)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}
