import FedTensor

/// TernGrad (Wen et al. 2017): each element becomes one of {−sₜ, 0, +sₜ} for its bucket's scale.
///
/// Per bucket `s = max |vᵢ|`; element `i` is sent as `sign(vᵢ) · bᵢ` with `bᵢ ~ Bernoulli(|vᵢ| / s)`
/// and decoded as `s · sign(vᵢ) · bᵢ`, so `E[decoded] = v` (unbiased).
///
/// Payload: header · varint bucketSize (0 = one bucket for the whole vector) · one float32 `s` per
/// bucket · 2 bits per element, LSB first (00 = 0, 01 = +s, 10 = −s; 11 is rejected), i.e.
/// `header + varint + 4·buckets + ⌈2n/8⌉` bytes.
public struct TernGradCodec: Codec {
    /// Elements sharing one scale; `nil` uses one scale for the whole vector (the paper's default).
    public let bucketSize: Int?

    public init(bucketSize: Int? = nil) {
        precondition(bucketSize.map { $0 >= 1 } ?? true, "TernGrad bucket size must be positive")
        self.bucketSize = bucketSize
    }

    public var id: CodecID { .ternGrad }
    public var name: String { "terngrad(bucket=\(bucketSize.map(String.init) ?? "all"))" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        let bucket = max(1, bucketSize ?? n)
        let buckets = n == 0 ? 0 : (n - 1) / bucket + 1
        var w = PayloadWriter(capacity: 16 + 4 * buckets + (2 * n + 7) / 8)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.writeVarint(UInt64(bucketSize ?? 0))
        var rng = SeededRNG(seed: context.seed, stream: context.stream + "/terngrad")
        var bw = BitWriter(capacity: (2 * n + 7) / 8)
        for b in 0..<buckets {
            let lo = b * bucket
            let hi = min(n, lo + bucket)
            var s: Float = 0
            for i in lo..<hi { s = max(s, abs(values[i])) }
            guard s.isFinite else { throw CodecError(.nonFinite, "bucket \(b) has a non-finite value") }
            w.write(s)
            let inverse = s > 0 ? 1 / s : 0
            for i in lo..<hi {
                let v = values[i]
                let keep = rng.nextUniform() < abs(v) * inverse
                bw.write(keep ? (v < 0 ? 2 : 1) : 0, bits: 2)
            }
        }
        w.write(bytes: bw.finish())
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let n = header.count
        let announced = try r.readCount("the TernGrad bucket size", limit: CodecHeader.maximumCount)
        let bucket = max(1, announced == 0 ? n : announced)
        let buckets = n == 0 ? 0 : (n - 1) / bucket + 1
        guard buckets <= r.remaining / 4 else {
            throw CodecError(.truncated, "\(buckets) bucket scales announced, \(r.remaining) bytes left")
        }
        var scales = [Float](repeating: 0, count: buckets)
        try scales.withUnsafeMutableBufferPointer { try r.readFloats(buckets, into: $0, "the bucket scales") }
        for (b, s) in scales.enumerated() where !(s.isFinite && s >= 0) {
            throw CodecError(.nonFinite, "bucket \(b) has scale \(s)")
        }
        let streamBytes = r.remaining
        guard n <= streamBytes * 4, streamBytes == (2 * n + 7) / 8 else {
            throw CodecError(.countMismatch, "\(n) ternary values do not fill \(streamBytes) bytes")
        }
        let offset = r.offset
        var out = [Float](repeating: 0, count: n)
        try payload.withUnsafeBufferPointer { buf in
            try out.withUnsafeMutableBufferPointer { o in
                var br = BitReader(buf, byteOffset: offset, byteCount: streamBytes)
                for b in 0..<buckets {
                    let s = scales[b]
                    let lo = b * bucket
                    for i in lo..<min(n, lo + bucket) {
                        switch try br.read(bits: 2, "a ternary value") {
                        case 0: o[i] = 0
                        case 1: o[i] = s
                        case 2: o[i] = -s
                        default: throw CodecError(.invalidParameter, "ternary code 11 at element \(i)")
                        }
                    }
                }
            }
        }
        _ = try r.readBytes(streamBytes, "the ternary values")
        try r.finish()
        return .dense(out)
    }
}
