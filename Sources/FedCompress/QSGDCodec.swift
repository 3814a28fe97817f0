import FedTensor

/// QSGD (Alistarh et al. 2017): stochastic quantisation of each bucket onto `s` levels of its norm.
///
/// For a bucket `v` of `bucketSize` elements with `‖v‖₂ > 0`, element `i` is sent as
/// `sign(vᵢ) · ξᵢ` with `ξᵢ = ⌊s·|vᵢ|/‖v‖₂⌋ + Bernoulli(frac(s·|vᵢ|/‖v‖₂))` in `0...s`, and decoded
/// as `sign(vᵢ) · ‖v‖₂ · ξᵢ / s`. Since `E[ξᵢ] = s·|vᵢ|/‖v‖₂` the decoded vector is unbiased.
///
/// Payload: header · varint s · varint bucketSize · u8 elias · one float32 ‖v‖₂ per bucket ·
/// bit stream (LSB first, see `BitWriter`). Fixed width: per element ⌈log₂(s+1)⌉ bits of ξ then one
/// sign bit (1 = negative), so `⌈n·(⌈log₂(s+1)⌉+1)/8⌉` bytes. Elias: per element the Elias-gamma
/// code of ξ+1, followed by a sign bit only when ξ > 0.
public struct QSGDCodec: Codec {
    /// Largest level count, so that ξ/s stays exact in float32.
    public static let maximumLevels = 1 << 24

    public let levels: Int
    public let bucketSize: Int
    public let elias: Bool

    /// - Parameters:
    ///   - s: quantisation levels (1...2²⁴); s = 1 sends one of {0, ±‖v‖} per element.
    ///   - bucketSize: elements sharing one norm (≥ 1).
    ///   - elias: Elias-gamma code the levels instead of fixed-width fields.
    public init(levels s: Int, bucketSize: Int = 512, elias: Bool = false) {
        precondition(s >= 1 && s <= Self.maximumLevels, "QSGD levels must be in 1...2^24")
        precondition(bucketSize >= 1, "QSGD bucket size must be positive")
        self.levels = s
        self.bucketSize = bucketSize
        self.elias = elias
    }

    public var id: CodecID { .qsgd }
    public var name: String { "qsgd(s=\(levels),bucket=\(bucketSize),elias=\(elias))" }

    /// Bits of a fixed-width level field: ⌈log₂(s+1)⌉.
    static func levelBits(_ s: Int) -> Int { Int.bitWidth - s.leadingZeroBitCount }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        let buckets = n == 0 ? 0 : (n - 1) / bucketSize + 1
        let bits = Self.levelBits(levels)
        var w = PayloadWriter(capacity: 24 + 4 * buckets + (n * (bits + 1) + 7) / 8)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.writeVarint(UInt64(levels))
        w.writeVarint(UInt64(bucketSize))
        w.write(UInt8(elias ? 1 : 0))
        var rng = SeededRNG(seed: context.seed, stream: context.stream + "/qsgd")
        var bw = BitWriter(capacity: (n * (bits + 1) + 7) / 8)
        let s = Float(levels)
        for b in 0..<buckets {
            let lo = b * bucketSize
            let hi = min(n, lo + bucketSize)
            var sum: Double = 0
            for i in lo..<hi { sum += Double(values[i]) * Double(values[i]) }
            let norm = Float(sum.squareRoot())
            guard norm.isFinite else { throw CodecError(.nonFinite, "bucket \(b) has a non-finite norm") }
            w.write(norm)
            let scale = norm > 0 ? s / norm : 0
            for i in lo..<hi {
                let v = values[i]
                let r = min(s, abs(v) * scale)
                let floor = r.rounded(.down)
                let xi = Int(floor) + (rng.nextUniform() < r - floor ? 1 : 0)
                let negative = v < 0
                if elias {
                    bw.writeEliasGamma(UInt64(xi + 1))
                    if xi > 0 { bw.write(bit: negative) }
                } else {
                    bw.write(UInt64(xi), bits: bits)
                    bw.write(bit: negative)
                }
            }
        }
        w.write(bytes: bw.finish())
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let n = header.count
        let s = try r.readCount("the QSGD level count", limit: Self.maximumLevels)
        guard s >= 1 else { throw CodecError(.invalidParameter, "QSGD level count must be at least 1") }
        let bucket = try r.readCount("the QSGD bucket size", limit: CodecHeader.maximumCount)
        guard bucket >= 1 else { throw CodecError(.invalidParameter, "QSGD bucket size must be at least 1") }
        let flag = try r.readUInt8("the Elias flag")
        guard flag <= 1 else { throw CodecError(.invalidParameter, "Elias flag \(flag) is not 0 or 1") }
        let buckets = n == 0 ? 0 : (n - 1) / bucket + 1
        guard buckets <= r.remaining / 4 else {
            throw CodecError(.truncated, "\(buckets) bucket norms announced, \(r.remaining) bytes left")
        }
        var norms = [Float](repeating: 0, count: buckets)
        try norms.withUnsafeMutableBufferPointer { try r.readFloats(buckets, into: $0, "the bucket norms") }
        for (b, norm) in norms.enumerated() where !(norm.isFinite && norm >= 0) {
            throw CodecError(.nonFinite, "bucket \(b) has norm \(norm)")
        }
        let bits = Self.levelBits(s)
        let streamBytes = r.remaining
        if flag == 0 {
            guard n <= (streamBytes * 8) / (bits + 1), streamBytes == (n * (bits + 1) + 7) / 8 else {
                throw CodecError(.countMismatch, "\(n) levels of \(bits + 1) bits do not fill \(streamBytes) bytes")
            }
        } else {
            guard n <= streamBytes * 8 else {
                throw CodecError(.truncated, "\(n) Elias codes cannot fit in \(streamBytes) bytes")
            }
        }
        let offset = r.offset
        var out = [Float](repeating: 0, count: n)
        let consumed = try payload.withUnsafeBufferPointer { buf in
            try out.withUnsafeMutableBufferPointer { o in
                var br = BitReader(buf, byteOffset: offset, byteCount: streamBytes)
                let maxBits = Self.levelBits(s + 1)
                let mask = UInt64(1) << UInt64(bits) - 1
                for b in 0..<buckets {
                    let unit = norms[b] / Float(s)
                    let lo = b * bucket
                    let hi = min(n, lo + bucket)
                    if flag == 0 && (unit * Float(s)).isFinite {
                        // Fixed width, and no level of this bucket can round past the largest float:
                        // level (low `bits` bits) and sign (the next bit) come from one field.
                        try br.readFields(count: hi - lo, bits: bits + 1, "the QSGD levels") { j, field in
                            let xi = field & mask
                            guard xi <= UInt64(s) else {
                                throw CodecError(.invalidParameter, "QSGD level \(xi) exceeds s = \(s)")
                            }
                            let magnitude = unit * Float(xi)
                            o[lo + j] = field >> UInt64(bits) != 0 ? -magnitude : magnitude
                        }
                        continue
                    }
                    for i in lo..<hi {
                        let xi: Int
                        var negative = false
                        if flag == 0 {
                            // Level (low `bits` bits) and sign (the next bit) in one read.
                            let field = try br.read(bits: bits + 1, "a QSGD level")
                            xi = Int(field & ((1 << UInt64(bits)) - 1))
                            negative = field >> UInt64(bits) != 0
                        } else {
                            xi = Int(try br.readEliasGamma(maxBits: maxBits, "a QSGD level")) - 1
                            if xi > 0 { negative = try br.readBit("a QSGD sign") }
                        }
                        guard xi <= s else { throw CodecError(.invalidParameter, "QSGD level \(xi) exceeds s = \(s)") }
                        var magnitude = unit * Float(xi)
                        if !magnitude.isFinite {
                            // norm / s · xi can round past the largest float when the norm is near it;
                            // xi ≤ s keeps the exact value ≤ norm.
                            magnitude = Float(Double(norms[b]) * Double(xi) / Double(s))
                        }
                        o[i] = negative ? -magnitude : magnitude
                    }
                }
                return br.bytesConsumed
            }
        }
        guard consumed == streamBytes else {
            throw CodecError(.trailingBytes, "\(streamBytes - consumed) unexpected bytes after the QSGD levels")
        }
        _ = try r.readBytes(streamBytes, "the QSGD levels")
        try r.finish()
        return .dense(out)
    }
}
