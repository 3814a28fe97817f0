/// What a decoder hands back: every element, or only the kept ones (sparse codecs), so that
/// aggregation need not densify.
public enum DecodedUpdate: Sendable, Equatable {
    case dense([Float])
    /// `indices` strictly increasing, all `< count`; `values[i]` belongs at `indices[i]`.
    case sparse(count: Int, indices: [UInt32], values: [Float])

    /// Number of elements of the original vector.
    public var count: Int {
        switch self {
        case .dense(let v): v.count
        case .sparse(let n, _, _): n
        }
    }

    /// The full vector (zeros where a sparse payload kept nothing).
    public func densified() -> [Float] {
        switch self {
        case .dense(let v): return v
        case .sparse(let n, let idx, let vals):
            var out = [Float](repeating: 0, count: n)
            for (i, v) in zip(idx, vals) { out[Int(i)] = v }
            return out
        }
    }
}

/// Randomness a stochastic codec may use, derived from the run's root seed so encodings are
/// reproducible (`SeededRNG(seed: seed, stream: ...)`), and the tensor shape for codecs that need
/// a matrix view (PowerSGD).
public struct CodecContext: Sendable {
    public var seed: UInt64
    /// e.g. "client/7/round/3/uplink"; codecs derive their stream from it.
    public var stream: String
    /// Shape of the tensor being encoded, outermost first (empty if unknown / flat).
    public var shape: [Int]
    /// Names the tensor across calls (e.g. "client/7/uplink/fc1.weight", no round number), for codecs
    /// that keep state from one call to the next (PowerSGD's warm-started `Q`); `stream` when nil.
    public var key: String?

    public init(seed: UInt64 = 0, stream: String = "", shape: [Int] = [], key: String? = nil) {
        self.seed = seed
        self.stream = stream
        self.shape = shape
        self.key = key
    }

    /// `key`, or `stream` when no key was given.
    public var stateKey: String { key ?? stream }
}

/// Turns a `Float` vector into a self-describing byte payload and back.
///
/// Encoders write `CodecHeader` first, then their parameters, then the data. Decoders treat the
/// payload as untrusted: any malformed input (truncation, wrong count, index out of range, NaN
/// scale, length overflow) is a thrown `CodecError`, never a crash or out-of-bounds read.
public protocol Codec: Sendable {
    var id: CodecID { get }
    /// Short name with parameters, e.g. `topk(ratio=0.01)`.
    var name: String { get }
    func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8]
    func decode(_ payload: [UInt8]) throws -> DecodedUpdate
}

extension Codec {
    /// Encodes an array.
    public func encode(_ values: [Float], context: CodecContext = CodecContext()) throws -> [UInt8] {
        try values.withUnsafeBufferPointer { try encode($0, context: context) }
    }
}
