import FedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// All parameters of a model in one contiguous `Float` buffer, their gradients in a second
/// buffer of the same layout, and a named range per tensor (PyTorch `state_dict` names).
///
/// Averaging, deltas, norms, compression and layer-wise synchronisation are loops over
/// `values` or over one entry's range of it.
public final class ParameterSet: @unchecked Sendable {
    /// One named tensor inside the flat buffers.
    public struct Entry: Sendable, Hashable {
        public let name: String
        public let shape: Shape
        public let offset: Int
        public var count: Int { shape.count }
        public var range: Range<Int> { offset..<(offset + shape.count) }
        /// False once the owning layer is frozen; optimizers skip the range.
        public internal(set) var trainable: Bool
    }

    public private(set) var entries: [Entry]
    /// Total number of scalars.
    public let count: Int
    /// Parameter values, all tensors back to back.
    public let values: UnsafeMutableBufferPointer<Float>
    /// Gradients in the same layout as `values`. Zeroed by the system (`calloc`): a model that
    /// never runs a backward pass (a server's global model, an evaluator's replica) keeps no
    /// resident memory for them.
    public let gradients: UnsafeMutableBufferPointer<Float>
    private let index: [String: Int]

    /// Allocates zeroed storage for tensors with the given names and shapes, in order.
    public init(layout: [(name: String, shape: Shape)]) {
        var offset = 0
        var entries: [Entry] = []
        var index: [String: Int] = [:]
        for (name, shape) in layout {
            precondition(index[name] == nil, "duplicate parameter name \(name)")
            index[name] = entries.count
            entries.append(Entry(name: name, shape: shape, offset: offset, trainable: true))
            offset += shape.count
        }
        self.entries = entries
        self.index = index
        self.count = offset
        values = .allocate(capacity: max(offset, 1))
        values.initialize(repeating: 0)
        let n = max(offset, 1)
        guard let zeroed = calloc(n, MemoryLayout<Float>.stride) else {
            fatalError("cannot allocate \(n) gradients")
        }
        gradients = UnsafeMutableBufferPointer(start: zeroed.bindMemory(to: Float.self, capacity: n), count: n)
    }

    deinit {
        values.deallocate()
        free(gradients.baseAddress)
    }

    /// The entry called `name`, if any.
    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// A copy of the tensor called `name`.
    public func tensor(named name: String) -> Tensor? {
        guard let e = entry(named: name) else { return nil }
        return Tensor(shape: e.shape, scalars: Array(values[e.range]))
    }

    /// A copy of the gradient of the tensor called `name`.
    public func gradient(named name: String) -> Tensor? {
        guard let e = entry(named: name) else { return nil }
        return Tensor(shape: e.shape, scalars: Array(gradients[e.range]))
    }

    /// Overwrites the tensor called `name`.
    /// - Throws: `ModelError` if there is no such tensor or the shapes differ.
    public func assign(_ tensor: Tensor, to name: String) throws {
        guard let e = entry(named: name) else {
            throw ModelError(.unknownParameter, "no parameter named '\(name)'")
        }
        guard e.shape == tensor.shape else {
            throw ModelError(.shapeMismatch, "'\(name)': expected shape \(e.shape), found \(tensor.shape)")
        }
        tensor.withUnsafeBufferPointer { src in
            (values.baseAddress! + e.offset).update(from: src.baseAddress!, count: e.count)
        }
    }

    /// Sets every gradient to zero.
    public func zeroGradients() {
        let g = gradients
        ComputeThreads.forEachPiece(of: 0..<g.count) { piece in
            UnsafeMutableBufferPointer(rebasing: g[piece]).update(repeating: 0)
        }
    }

    /// All values as one array (a copy).
    public var flatValues: [Float] { Array(values) }

    /// Overwrites all values from a flat array of length `count`.
    public func setFlatValues(_ flat: [Float]) {
        precondition(flat.count == count, "expected \(count) values, got \(flat.count)")
        flat.withUnsafeBufferPointer { values.baseAddress!.update(from: $0.baseAddress!, count: count) }
    }

    /// Copies all values from a set with the same layout.
    public func copyValues(from other: ParameterSet) {
        precondition(other.count == count, "layouts differ")
        values.baseAddress!.update(from: other.values.baseAddress!, count: count)
    }

    /// Ranges that optimizers update: the entries that are not frozen, adjacent ones merged.
    public var trainableRanges: [Range<Int>] {
        var out: [Range<Int>] = []
        for e in entries where e.trainable && e.count > 0 {
            if let last = out.last, last.upperBound == e.offset {
                out[out.count - 1] = last.lowerBound..<e.range.upperBound
            } else {
                out.append(e.range)
            }
        }
        return out
    }

    func setTrainable(_ trainable: Bool, whereNameHasPrefix prefix: String) {
        for i in entries.indices where entries[i].name.hasPrefix(prefix) {
            entries[i].trainable = trainable
        }
    }
}
