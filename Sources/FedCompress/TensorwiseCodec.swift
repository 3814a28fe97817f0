/// Applies a codec tensor by tensor to a whole model update, sending small tensors (biases, norms)
/// with a cheaper-to-get-right codec, by default uncompressed.
///
/// ```swift
/// let layout = model.parameters.entries.map { TensorwiseCodec.Tensor(name: $0.name, shape: $0.shape.dims) }
/// let codec = try TensorwiseCodec(tensors: layout, codec: TopKCodec(ratio: 0.01), minimumElements: 1_000)
/// let payload = try codec.encode(update, context: CodecContext(seed: 0, stream: "client/3/round/9/uplink"))
/// ```
///
/// Tensor `t` (in layout order) is encoded with `codec` if it has at least `minimumElements`
/// elements, else with `small`, under a context whose `shape` is the tensor's, whose `stream` is
/// `context.stream + "/" + name` and whose key is `context.stateKey + "/" + name` (so a stateful codec
/// such as PowerSGD warm-starts each tensor separately).
///
/// Payload: header (count = total elements) · varint tensor count · for each tensor in layout order:
/// varint payload length · the tensor's own codec payload. Decoding checks the tensor count, every
/// length against what remains, and every tensor's decoded count against the layout. The decoding is
/// dense when every tensor decodes dense; otherwise sparse over the whole update, where a densely
/// decoded tensor contributes all of its indices (it "contains" every coordinate, for OPWA).
public struct TensorwiseCodec: Codec {
    /// One tensor of the update, in the order its elements appear.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var count: Int { shape.reduce(1, *) }

        public init(name: String, shape: [Int]) {
            self.name = name
            self.shape = shape
        }
    }

    public let tensors: [Tensor]
    public let codec: any Codec
    public let small: any Codec
    public let minimumElements: Int
    /// Total elements of the layout.
    public let count: Int
    private let offsets: [Int]

    /// - Throws: `CodecError.invalidParameter` for an empty layout, a negative dimension, a negative
    ///   threshold or a layout larger than `CodecHeader.maximumCount`.
    public init(
        tensors: [Tensor], codec: any Codec, small: any Codec = IdentityCodec(), minimumElements: Int = 0
    ) throws {
        guard !tensors.isEmpty else {
            throw CodecError(.invalidParameter, "tensorwise codec needs at least one tensor")
        }
        guard minimumElements >= 0 else {
            throw CodecError(.invalidParameter, "minimum tensor size must be ≥ 0, got \(minimumElements)")
        }
        var offsets: [Int] = []
        var total = 0
        for t in tensors {
            guard t.shape.allSatisfy({ $0 >= 0 }) else {
                throw CodecError(.invalidParameter, "tensor '\(t.name)' has a negative dimension: \(t.shape)")
            }
            offsets.append(total)
            total += t.count
            guard total <= CodecHeader.maximumCount else {
                throw CodecError(.invalidParameter, "layout holds more than \(CodecHeader.maximumCount) elements")
            }
        }
        self.tensors = tensors
        self.codec = codec
        self.small = small
        self.minimumElements = minimumElements
        self.count = total
        self.offsets = offsets
    }

    public var id: CodecID { .tensorwise }
    public var name: String {
        "tensorwise(\(codec.name), tensors<\(minimumElements): \(small.name))"
    }

    /// The codec used for tensor `t`.
    public func codec(for t: Tensor) -> any Codec { t.count >= minimumElements ? codec : small }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        guard values.count == count else {
            throw CodecError(.countMismatch, "update has \(values.count) elements, the layout \(count)")
        }
        var parts: [[UInt8]] = []
        parts.reserveCapacity(tensors.count)
        for (t, offset) in zip(tensors, offsets) {
            let slice = UnsafeBufferPointer(rebasing: values[offset..<(offset + t.count)])
            let sub = CodecContext(
                seed: context.seed, stream: context.stream + "/" + t.name, shape: t.shape,
                key: context.stateKey + "/" + t.name)
            parts.append(try codec(for: t).encode(slice, context: sub))
        }
        var w = PayloadWriter(capacity: 16 + parts.reduce(0) { $0 + $1.count + 5 })
        CodecHeader(codec: id, count: count).write(to: &w)
        w.writeVarint(UInt64(tensors.count))
        for p in parts {
            w.writeVarint(UInt64(p.count))
            w.write(bytes: p)
        }
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        guard header.count == count else {
            throw CodecError(.countMismatch, "payload holds \(header.count) elements, the layout \(count)")
        }
        let tensorCount = try r.readCount("the tensor count", limit: tensors.count)
        guard tensorCount == tensors.count else {
            throw CodecError(.countMismatch, "payload holds \(tensorCount) tensors, the layout \(tensors.count)")
        }
        var parts: [DecodedUpdate] = []
        parts.reserveCapacity(tensors.count)
        for t in tensors {
            let length = try r.readCount("the length of tensor '\(t.name)'", limit: r.remaining)
            let bytes = Array(try r.readBytes(length, "tensor '\(t.name)'"))
            let decoded = try codec(for: t).decode(bytes)
            guard decoded.count == t.count else {
                throw CodecError(
                    .countMismatch, "tensor '\(t.name)' decoded \(decoded.count) elements, expected \(t.count)")
            }
            if case .sparse(_, let idx, let vals) = decoded, idx.count != vals.count {
                throw CodecError(.countMismatch, "tensor '\(t.name)': \(idx.count) indices but \(vals.count) values")
            }
            parts.append(decoded)
        }
        try r.finish()
        return Self.join(parts, offsets: offsets, count: count)
    }

    /// One update from per-tensor decodings laid end to end.
    static func join(_ parts: [DecodedUpdate], offsets: [Int], count: Int) -> DecodedUpdate {
        let allDense = parts.allSatisfy { if case .dense = $0 { true } else { false } }
        if allDense {
            var out: [Float] = []
            out.reserveCapacity(count)
            for case .dense(let v) in parts { out += v }
            return .dense(out)
        }
        var indices: [UInt32] = []
        var values: [Float] = []
        for (part, offset) in zip(parts, offsets) {
            switch part {
            case .dense(let v):
                indices += (0..<v.count).map { UInt32(offset + $0) }
                values += v
            case .sparse(_, let idx, let vals):
                indices += idx.map { UInt32(offset) + $0 }
                values += vals
            }
        }
        return .sparse(count: count, indices: indices, values: values)
    }
}
