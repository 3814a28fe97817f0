import FedTensor
import Synchronization

/// PowerSGD (Vogels et al. 2019): a rank-r approximation from one warm-started power iteration.
///
/// The tensor is viewed as an `m × c` matrix `M` (`m = context.shape[0]`, `c` = product of the rest,
/// row-major). With `Q` (`c × r`) from the previous call on the same `context.stateKey` (initially
/// i.i.d. N(0, 1) from `SeededRNG(seed, stateKey + "/powersgd")`): `P = M Q`, `P ← orthonormalise(P)`
/// (modified Gram–Schmidt; a column that vanishes is set to zero), `Q = Mᵀ P`; the payload carries
/// `P` and `Q` and decodes to `M̂ = P Qᵀ`. `Q` is kept for the next call with that key (warm start).
/// If `M` has rank ≤ r, `M̂ = M` up to rounding. Biased; pair with error feedback on the client.
/// The effective rank is `min(r, m, c)`. Tensors with fewer than two dimensions are sent raw.
/// Non-finite inputs are rejected when encoding, non-finite results when decoding.
///
/// Payload: header · u8 mode. Mode 0 (raw): n float32. Mode 1 (low rank): varint m · varint c ·
/// varint r · `P` (m·r float32, row-major) · `Q` (c·r float32, row-major).
public final class PowerSGDCodec: Codec, Sendable {
    public let rank: Int
    private let warmStarts = Mutex<[String: [Float]]>([:])

    /// - Parameter r: target rank (≥ 1).
    public init(rank r: Int) {
        precondition(r >= 1, "PowerSGD rank must be at least 1")
        self.rank = r
    }

    public var id: CodecID { .powerSGD }
    public var name: String { "powersgd(rank=\(rank))" }

    /// Number of tensors (state keys) with a warm-started `Q`.
    public var warmStartCount: Int { warmStarts.withLock { $0.count } }

    /// Every warm-started `Q` by state key, for checkpoints.
    public var savedWarmStarts: [String: [Float]] { warmStarts.withLock { $0 } }

    /// Replaces the warm starts by `saved` (as read from ``savedWarmStarts``).
    public func restore(warmStarts saved: [String: [Float]]) { warmStarts.withLock { $0 = saved } }

    /// Forgets every warm-started `Q`.
    public func reset() { warmStarts.withLock { $0.removeAll() } }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        var w = PayloadWriter(capacity: 16 + 4 * n)
        CodecHeader(codec: id, count: n).write(to: &w)
        for v in values where !v.isFinite { throw CodecError(.nonFinite, "the tensor has a non-finite element") }
        guard context.shape.count >= 2 else {
            w.write(UInt8(0))
            w.write(floats: values)
            return w.bytes
        }
        let rows = context.shape[0]
        let product = context.shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard rows > 0, product == n, context.shape.allSatisfy({ $0 > 0 }) else {
            throw CodecError(.invalidParameter, "shape \(context.shape) does not hold \(n) elements")
        }
        let cols = n / rows
        let r = min(rank, rows, cols)
        let stream = context.stateKey
        var q = warmStarts.withLock { $0[stream] } ?? []
        if q.count != cols * r {
            var rng = SeededRNG(seed: context.seed, stream: stream + "/powersgd")
            q = (0..<(cols * r)).map { _ in rng.nextNormal() }
        }
        var p = [Float](repeating: 0, count: rows * r)
        let m = values.baseAddress!
        p.withUnsafeMutableBufferPointer { pb in
            q.withUnsafeBufferPointer { qb in Self.multiply(m, rows: rows, cols: cols, by: qb, rank: r, into: pb) }
            Self.orthonormalise(pb, rows: rows, rank: r)
        }
        q.withUnsafeMutableBufferPointer { qb in
            p.withUnsafeBufferPointer { pb in
                Self.multiplyTransposed(m, rows: rows, cols: cols, by: pb, rank: r, into: qb)
            }
        }
        // Finite but huge inputs can overflow in M Q, Mᵀ P or P Qᵀ: refuse them rather than write a
        // payload the decoder rejects, and keep the warm start clean. P's columns are unit or zero,
        // so |(P Qᵀ)ᵢⱼ| ≤ Σₖ |Qⱼₖ| (up to rounding); half the float range leaves room for it.
        guard p.allSatisfy(\.isFinite), Self.rowSumsBounded(q, rank: r) else {
            throw CodecError(.nonFinite, "the rank-\(r) factors of this tensor overflow float32")
        }
        warmStarts.withLock { $0[stream] = q }
        w.write(UInt8(1))
        w.writeVarint(UInt64(rows))
        w.writeVarint(UInt64(cols))
        w.writeVarint(UInt64(r))
        p.withUnsafeBufferPointer { w.write(floats: $0) }
        q.withUnsafeBufferPointer { w.write(floats: $0) }
        return w.bytes
    }

    /// `P = M Q` for row-major `M` (rows × cols) and `Q` (cols × rank).
    static func multiply(
        _ m: UnsafePointer<Float>, rows: Int, cols: Int, by q: UnsafeBufferPointer<Float>, rank: Int,
        into p: UnsafeMutableBufferPointer<Float>
    ) {
        for i in 0..<rows {
            let row = m + i * cols
            let out = p.baseAddress! + i * rank
            for k in 0..<rank { out[k] = 0 }
            for j in 0..<cols {
                let x = row[j]
                let qRow = q.baseAddress! + j * rank
                for k in 0..<rank { out[k] += x * qRow[k] }
            }
        }
    }

    /// `Q = Mᵀ P` for row-major `M` (rows × cols) and `P` (rows × rank).
    static func multiplyTransposed(
        _ m: UnsafePointer<Float>, rows: Int, cols: Int, by p: UnsafeBufferPointer<Float>, rank: Int,
        into q: UnsafeMutableBufferPointer<Float>
    ) {
        for k in 0..<q.count { q[k] = 0 }
        for i in 0..<rows {
            let row = m + i * cols
            let pRow = p.baseAddress! + i * rank
            for j in 0..<cols {
                let x = row[j]
                let qRow = q.baseAddress! + j * rank
                for k in 0..<rank { qRow[k] += x * pRow[k] }
            }
        }
    }

    /// Modified Gram–Schmidt on the columns of row-major `p` (rows × rank), in double precision.
    /// Whether every row of `q` (`rank` wide) is finite with an absolute sum of at most half the
    /// largest float.
    static func rowSumsBounded(_ q: [Float], rank: Int) -> Bool {
        let bound = Double(Float.greatestFiniteMagnitude) / 2
        var j = 0
        while j < q.count {
            var sum: Double = 0
            for k in j..<(j + rank) { sum += Double(q[k].magnitude) }
            guard sum <= bound else { return false }  // false for NaN and ∞ too
            j += rank
        }
        return true
    }

    static func orthonormalise(_ p: UnsafeMutableBufferPointer<Float>, rows: Int, rank: Int) {
        var scale: Double = 0
        for v in p { scale = max(scale, Double(abs(v))) }
        let tiny = max(scale, 1) * 1e-10
        for k in 0..<rank {
            for previous in 0..<k {
                var dot: Double = 0
                for i in 0..<rows { dot += Double(p[i * rank + k]) * Double(p[i * rank + previous]) }
                for i in 0..<rows { p[i * rank + k] -= Float(dot) * p[i * rank + previous] }
            }
            var norm: Double = 0
            for i in 0..<rows { norm += Double(p[i * rank + k]) * Double(p[i * rank + k]) }
            norm = norm.squareRoot()
            let inverse = norm > tiny ? Float(1 / norm) : 0
            for i in 0..<rows { p[i * rank + k] *= inverse }
        }
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let n = header.count
        let mode = try r.readUInt8("the PowerSGD mode")
        var out: [Float]
        switch mode {
        case 0:
            guard r.remaining == 4 * n else {
                throw CodecError(.countMismatch, "\(n) raw values need \(4 * n) bytes, \(r.remaining) follow")
            }
            out = [Float](repeating: 0, count: n)
            try out.withUnsafeMutableBufferPointer { try r.readFloats(n, into: $0, "the raw values") }
        case 1:
            let rows = try r.readCount("the row count", limit: CodecHeader.maximumCount)
            let cols = try r.readCount("the column count", limit: CodecHeader.maximumCount)
            let rank = try r.readCount("the rank", limit: CodecHeader.maximumCount)
            let (cells, overflow) = rows.multipliedReportingOverflow(by: cols)
            guard !overflow, cells == n, rank >= 1, rank <= min(rows, cols) else {
                throw CodecError(.invalidHeader, "a \(rows) × \(cols) rank-\(rank) matrix cannot hold \(n) elements")
            }
            // rank ≤ min(rows, cols) keeps (rows + cols) · rank ≤ 2n, so no overflow below.
            let factorCount = (rows + cols) * rank
            guard r.remaining == 4 * factorCount else {
                throw CodecError(.countMismatch, "factors need \(4 * factorCount) bytes, \(r.remaining) follow")
            }
            var p = [Float](repeating: 0, count: rows * rank)
            var q = [Float](repeating: 0, count: cols * rank)
            try p.withUnsafeMutableBufferPointer { try r.readFloats(rows * rank, into: $0, "P") }
            try q.withUnsafeMutableBufferPointer { try r.readFloats(cols * rank, into: $0, "Q") }
            guard p.allSatisfy(\.isFinite), q.allSatisfy(\.isFinite) else {
                throw CodecError(.nonFinite, "a PowerSGD factor has a non-finite element")
            }
            out = [Float](repeating: 0, count: n)
            p.withUnsafeBufferPointer { pb in
                q.withUnsafeBufferPointer { qb in
                    out.withUnsafeMutableBufferPointer { o in
                        for i in 0..<rows {
                            let pRow = pb.baseAddress! + i * rank
                            let oRow = o.baseAddress! + i * cols
                            for j in 0..<cols {
                                let qRow = qb.baseAddress! + j * rank
                                var s: Float = 0
                                for k in 0..<rank { s += pRow[k] * qRow[k] }
                                oRow[j] = s
                            }
                        }
                    }
                }
            }
        default:
            throw CodecError(.invalidParameter, "unknown PowerSGD mode \(mode)")
        }
        try r.finish()
        // Finite but huge factors can overflow in P Qᵀ; raw values can be NaN.
        guard out.allSatisfy(\.isFinite) else { throw CodecError(.nonFinite, "the decoded matrix is not finite") }
        return .dense(out)
    }
}
