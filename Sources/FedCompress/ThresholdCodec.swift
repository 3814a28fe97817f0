/// Threshold sparsification: keeps every element with `|x| ≥ threshold`.
///
/// Payload: see `SparsePayload` (header, value format, k, index block, values); the index block
/// is the same adaptive varint / bitmap / Rice coding as `TopKCodec`.
public struct ThresholdCodec: Codec {
    public let threshold: Float
    public let valueFormat: SparseValueFormat

    /// Keeps `|x| ≥ threshold`; `threshold` must be finite and ≥ 0.
    public init(threshold: Float, valueFormat: SparseValueFormat = .fp32) {
        self.threshold = threshold
        self.valueFormat = valueFormat
    }

    public var id: CodecID { .threshold }
    public var name: String {
        "threshold(threshold=\(threshold)" + (valueFormat == .fp16 ? ",fp16)" : ")")
    }

    /// Throws `invalidParameter` unless the threshold is finite and ≥ 0.
    public func validate() throws {
        guard threshold.isFinite && threshold >= 0 else {
            throw CodecError(.invalidParameter, "threshold must be finite and ≥ 0, got \(threshold)")
        }
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        try validate()
        var indices = [UInt32]()
        for i in 0..<values.count where abs(values[i]) >= threshold { indices.append(UInt32(i)) }
        return try SparsePayload.encode(
            codec: id, source: values, indices: indices, format: valueFormat)
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        try SparsePayload.decode(payload, codec: id)
    }
}
