import FedTensor

/// Random-K sparsification: keeps k uniformly random distinct elements. The indices are not
/// sent; the payload carries the 64-bit seed they are drawn from and the decoder redraws them.
///
/// With `unbiased`, kept values are scaled by n/k so the decoded vector is an unbiased estimate
/// of the input (each element is kept with probability k/n).
///
/// Payload: header, k (varint), seed (UInt64), k float32 values in ascending index order.
public struct RandomKCodec: Codec {
    public let ratio: Double
    public let unbiased: Bool

    /// Keeps `round(ratio · n)` (clamped to `1…n`) elements; `0 < ratio ≤ 1`.
    public init(ratio: Double, unbiased: Bool = false) {
        self.ratio = ratio
        self.unbiased = unbiased
    }

    public var id: CodecID { .randomK }
    public var name: String { "randomk(ratio=\(ratio)" + (unbiased ? ",unbiased)" : ")") }

    /// Throws `invalidParameter` unless `0 < ratio ≤ 1`.
    public func validate() throws {
        guard ratio > 0 && ratio <= 1 else {
            throw CodecError(.invalidParameter, "randomk ratio must be in (0, 1], got \(ratio)")
        }
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        try validate()
        let n = values.count
        let k = SparsePayload.keptCount(ratio: ratio, of: n)
        var seeder = SeededRNG(seed: context.seed, stream: context.stream + "/randomk")
        let seed = seeder.next()
        let indices = Self.indices(count: n, kept: k, seed: seed)
        let scale: Float = unbiased && k > 0 ? Float(n) / Float(k) : 1
        var w = PayloadWriter(capacity: 24 + 4 * k)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.writeVarint(UInt64(k))
        w.write(seed)
        for i in indices {
            let v = values[Int(i)] * scale
            guard v.isFinite else { throw CodecError(.nonFinite, "kept value at index \(i) is \(v)") }
            w.write(v)
        }
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let n = header.count
        let k = try r.readCount("the kept count", limit: n)
        let seed = try r.readUInt64("the index seed")
        guard k <= r.remaining / 4 else {
            throw CodecError(.truncated, "\(k) kept values cannot fit in the \(r.remaining) bytes left")
        }
        var values = [Float](repeating: 0, count: k)
        try values.withUnsafeMutableBufferPointer { try r.readFloats(k, into: $0, "the kept values") }
        try r.finish()
        for (j, v) in values.enumerated() where !v.isFinite {
            throw CodecError(.nonFinite, "kept value \(j) is \(v)")
        }
        return .sparse(count: n, indices: Self.indices(count: n, kept: k, seed: seed), values: values)
    }

    /// The k distinct indices (ascending) drawn from `seed`: partial Fisher–Yates over `0..<n`
    /// when k is a sizeable fraction of n, Floyd's algorithm (O(k) memory) otherwise. The choice
    /// depends only on (n, k), so encoder and decoder agree.
    public static func indices(count n: Int, kept k: Int, seed: UInt64) -> [UInt32] {
        precondition(k >= 0 && k <= n)
        var rng = SeededRNG(seed: seed)
        var out: [UInt32]
        if k * 16 >= n {
            var pool = (0..<n).map { UInt32($0) }
            pool.withUnsafeMutableBufferPointer { p in
                for i in 0..<k { p.swapAt(i, i + rng.nextInt(below: n - i)) }
            }
            out = Array(pool[0..<k])
        } else {
            var chosen = Set<UInt32>(minimumCapacity: k)
            for j in (n - k)..<n {
                let t = UInt32(rng.nextInt(below: j + 1))
                if !chosen.insert(t).inserted { chosen.insert(UInt32(j)) }
            }
            out = Array(chosen)
        }
        out.sort()
        return out
    }
}
