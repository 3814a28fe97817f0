/// The payload shared by `TopKCodec` and `ThresholdCodec`:
/// header, value format (1 byte, `SparseValueFormat`), kept count `k` (varint),
/// index block (`SparseIndexCoding`), then `k` values (fp32 or fp16 bit patterns, little-endian).
enum SparsePayload {
    /// Number of elements a `ratio` keeps out of `n`: `round(ratio · n)` clamped to `1…n` (0 when `n` is 0).
    static func keptCount(ratio: Double, of n: Int) -> Int {
        guard n > 0 else { return 0 }
        return min(n, max(1, Int((ratio * Double(n)).rounded())))
    }

    static func encode(
        codec: CodecID, source: UnsafeBufferPointer<Float>, indices: [UInt32], format: SparseValueFormat
    ) throws -> [UInt8] {
        let k = indices.count
        var w = PayloadWriter(capacity: 32 + k * (format.byteWidth + 2))
        CodecHeader(codec: codec, count: source.count).write(to: &w)
        w.write(format.rawValue)
        w.writeVarint(UInt64(k))
        indices.withUnsafeBufferPointer { _ = SparseIndexCoding.write($0, count: source.count, to: &w) }
        for i in indices {
            let v = source[Int(i)]
            switch format {
            case .fp32:
                guard v.isFinite else { throw CodecError(.nonFinite, "kept value at index \(i) is \(v)") }
                w.write(v)
            case .fp16:
                let h = HalfPrecision.fp16Bits(v)
                guard HalfPrecision.float(fp16Bits: h).isFinite else {
                    throw CodecError(.nonFinite, "kept value at index \(i) (\(v)) is not finite in fp16")
                }
                w.write(h)
            }
        }
        return w.bytes
    }

    static func decode(_ payload: [UInt8], codec: CodecID) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: codec)
        let n = header.count
        let rawFormat = try r.readUInt8("the value format")
        guard let format = SparseValueFormat(rawValue: rawFormat) else {
            throw CodecError(
                .invalidHeader, "unknown value format \(rawFormat) (allowed: 0 fp32, 1 fp16)")
        }
        let k = try r.readCount("the kept count", limit: n)
        // Bounds the allocations below by the payload size.
        guard k <= r.remaining / format.byteWidth else {
            throw CodecError(.truncated, "\(k) kept values cannot fit in the \(r.remaining) bytes left")
        }
        let indices = try SparseIndexCoding.read(from: &r, kept: k, count: n)
        let values = try format.readValues(k, from: &r)
        try r.finish()
        return .sparse(count: n, indices: indices, values: values)
    }
}
