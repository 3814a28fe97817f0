/// The dimensions of a tensor, outermost first (PyTorch order: `[N, C, H, W]` for activations,
/// `[out, in, kh, kw]` for convolution weights).
public struct Shape: Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var dims: [Int]

    @inlinable
    public init(_ dims: [Int]) {
        precondition(dims.allSatisfy { $0 >= 0 }, "negative dimension in shape \(dims)")
        self.dims = dims
    }

    @inlinable
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// Number of dimensions.
    @inlinable public var rank: Int { dims.count }

    /// Number of elements (1 for a scalar shape `[]`).
    @inlinable public var count: Int { dims.reduce(1, *) }

    @inlinable
    public subscript(_ i: Int) -> Int {
        get { dims[i] }
        set { dims[i] = newValue }
    }

    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }
}
