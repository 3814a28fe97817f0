import FedTensor

/// Top-K sparsification, then quantisation of the kept values, then index coding, then optionally
/// zlib over the whole inner payload (as in FedZip).
///
/// ```swift
/// let codec = CompositeCodec(ratio: 0.01, valueQuantizer: .qsgd(levels: 16), deflate: true)
/// ```
/// Keeps the same elements as `TopKCodec(ratio:)` in exact mode (same seeded stream), so with `.fp32`
/// values it decodes to exactly what Top-K decodes.
///
/// Payload: header (`.composite`, n) · u8 flags (bit 0: deflated; other bits zero) · u8 value
/// quantizer (0 fp32, 1 fp16, 2 QSGD) · inner block, raw to the end of the payload or, when
/// deflated, a `ZlibBlock` whose inflated length is at most `16·n + 64`. Inner block: varint k
/// (≤ n) · index block (`SparseIndexCoding`) · values: k float32, k fp16, or a complete QSGD
/// payload of the k kept values (its own header, count k).
public struct CompositeCodec: Codec {
    /// How the kept values are stored.
    public enum ValueQuantizer: Sendable, Equatable {
        /// 4 bytes per value, lossless.
        case fp32
        /// 2 bytes per value, IEEE half, round to nearest even.
        case fp16
        /// `QSGDCodec(levels:bucketSize:)` over the kept values (unbiased, stochastic).
        case qsgd(levels: Int, bucketSize: Int = 512)

        var wireValue: UInt8 {
            switch self {
            case .fp32: 0
            case .fp16: 1
            case .qsgd: 2
            }
        }
    }

    public let ratio: Double
    public let valueQuantizer: ValueQuantizer
    public let deflate: Bool

    /// - Parameters:
    ///   - ratio: fraction of elements kept, in `(0, 1]` (`round(ratio·n)` clamped to `1…n`).
    ///   - valueQuantizer: storage of the kept values.
    ///   - deflate: zlib-compress the inner block.
    public init(ratio: Double, valueQuantizer: ValueQuantizer = .fp32, deflate: Bool = false) {
        self.ratio = ratio
        self.valueQuantizer = valueQuantizer
        self.deflate = deflate
    }

    public var id: CodecID { .composite }

    public var name: String {
        var s = "composite(ratio=\(ratio)"
        switch valueQuantizer {
        case .fp32: break
        case .fp16: s += ",fp16"
        case .qsgd(let levels, let bucket): s += ",qsgd(s=\(levels),bucket=\(bucket))"
        }
        if deflate { s += ",deflate" }
        return s + ")"
    }

    /// Largest inner block a payload of `n` elements may inflate to: `16·n + 64` bytes.
    public static func inflatedLimit(count n: Int) -> Int { 16 * n + 64 }

    /// Throws `invalidParameter` unless the ratio and quantizer are usable.
    public func validate() throws {
        guard ratio > 0, ratio <= 1 else {
            throw CodecError(.invalidParameter, "composite ratio must be in (0, 1], got \(ratio)")
        }
        if case .qsgd(let levels, let bucket) = valueQuantizer {
            guard levels >= 1, levels <= QSGDCodec.maximumLevels else {
                throw CodecError(
                    .invalidParameter, "QSGD levels must be in 1...\(QSGDCodec.maximumLevels), got \(levels)")
            }
            guard bucket >= 1 else {
                throw CodecError(.invalidParameter, "QSGD bucket size must be ≥ 1, got \(bucket)")
            }
        }
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        try validate()
        let n = values.count
        let k = SparsePayload.keptCount(ratio: ratio, of: n)
        var rng = SeededRNG(seed: context.seed, stream: context.stream + "/topk")
        let indices = TopKSelection.exact(values, k: k, rng: &rng)

        var inner = PayloadWriter(capacity: 16 + k * 6)
        inner.writeVarint(UInt64(k))
        indices.withUnsafeBufferPointer { _ = SparseIndexCoding.write($0, count: n, to: &inner) }
        switch valueQuantizer {
        case .fp32, .fp16:
            let format: SparseValueFormat = valueQuantizer == .fp32 ? .fp32 : .fp16
            for i in indices {
                let v = values[Int(i)]
                if format == .fp32 {
                    guard v.isFinite else { throw CodecError(.nonFinite, "kept value at index \(i) is \(v)") }
                    inner.write(v)
                } else {
                    let h = HalfPrecision.fp16Bits(v)
                    guard HalfPrecision.float(fp16Bits: h).isFinite else {
                        throw CodecError(.nonFinite, "kept value at index \(i) (\(v)) is not finite in fp16")
                    }
                    inner.write(h)
                }
            }
        case .qsgd(let levels, let bucket):
            let kept = indices.map { values[Int($0)] }
            let qsgd = QSGDCodec(levels: levels, bucketSize: bucket)
            var sub = context
            sub.stream += "/composite"
            inner.write(bytes: try qsgd.encode(kept, context: sub))
        }

        var w = PayloadWriter(capacity: 16 + inner.bytes.count)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.write(UInt8(deflate ? 1 : 0))
        w.write(valueQuantizer.wireValue)
        if deflate {
            try ZlibBlock.write(inner.bytes, to: &w)
        } else {
            w.write(bytes: inner.bytes)
        }
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var outer = PayloadReader(payload)
        let header = try CodecHeader.read(from: &outer, expected: id)
        let n = header.count
        let flags = try outer.readUInt8("the composite flags")
        guard flags <= 1 else { throw CodecError(.invalidHeader, "unknown composite flags \(flags) (allowed: bit 0)") }
        let quantizer = try outer.readUInt8("the value quantizer")
        guard quantizer <= 2 else {
            throw CodecError(.invalidHeader, "unknown value quantizer \(quantizer) (allowed: 0 fp32, 1 fp16, 2 qsgd)")
        }
        var r: PayloadReader
        if flags == 1 {
            r = PayloadReader(try ZlibBlock.read(from: &outer, limit: Self.inflatedLimit(count: n)))
        } else {
            r = PayloadReader(Array(try outer.readBytes(outer.remaining, "the inner block")))
        }
        try outer.finish()

        let k = try r.readCount("the kept count", limit: n)
        // Every kept value costs at least one bit, so this bounds the allocations by the payload size.
        let minimumBytes = quantizer == 0 ? 4 * k : quantizer == 1 ? 2 * k : (k + 7) / 8
        guard minimumBytes <= r.remaining else {
            throw CodecError(.truncated, "\(k) kept values cannot fit in the \(r.remaining) bytes left")
        }
        let indices = try SparseIndexCoding.read(from: &r, kept: k, count: n)
        let values: [Float]
        switch quantizer {
        case 0, 1:
            values = try (quantizer == 0 ? SparseValueFormat.fp32 : .fp16).readValues(k, from: &r)
            try r.finish()
        default:
            let rest = Array(try r.readBytes(r.remaining, "the QSGD values"))
            var peek = PayloadReader(rest)
            let sub = try CodecHeader.read(from: &peek, expected: .qsgd)
            guard sub.count == k else {
                throw CodecError(.countMismatch, "QSGD block holds \(sub.count) values, kept count is \(k)")
            }
            // QSGDCodec.decode checks its own parameters and consumes every byte.
            let decoded = try QSGDCodec(levels: 1).decode(rest).densified()
            guard decoded.count == k else {
                throw CodecError(.countMismatch, "QSGD block decoded \(decoded.count) values, kept count is \(k)")
            }
            values = decoded
        }
        return .sparse(count: n, indices: indices, values: values)
    }
}
