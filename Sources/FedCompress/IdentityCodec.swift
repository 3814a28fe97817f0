import FedTensor

/// Uncompressed float32: the reference every other codec is measured against, and FedSwift's one
/// dense wire format (models and updates sent without compression). Lossless.
///
/// A payload is the codec header (`FSC`, version, codec id, varint count) and the values as
/// little-endian float32. ``encode(_:into:)`` and ``decode(_:into:)`` write and read the same
/// bytes in place, without the intermediate arrays of the ``Codec`` interface.
public struct IdentityCodec: Codec {
    public init() {}
    public var id: CodecID { .identity }
    public var name: String { "identity" }

    /// The size of the payload of `count` values.
    public static func size(count: Int) -> Int {
        var varint = 1
        var x = UInt64(count)
        while x >= 0x80 {
            x >>= 7
            varint += 1
        }
        return CodecHeader.magic.count + 2 + varint + 4 * count
    }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        var bytes: [UInt8] = []
        Self.encode(values, into: &bytes)
        return bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        guard header.count <= r.remaining / 4 else {
            throw CodecError(.truncated, "header announces \(header.count) values but only \(r.remaining) bytes follow")
        }
        var out = [Float](repeating: 0, count: header.count)
        try out.withUnsafeMutableBufferPointer { try r.readFloats(header.count, into: $0, "the values") }
        try r.finish()
        return .dense(out)
    }

    /// The bytes a payload of `count` values starts with (the values follow as little-endian
    /// float32), for writers that place the values themselves.
    public static func header(count: Int) -> [UInt8] {
        var w = PayloadWriter(capacity: 16)
        CodecHeader(codec: .identity, count: count).write(to: &w)
        return w.bytes
    }

    /// Encodes `values` into `bytes`, reusing its capacity.
    public static func encode(_ values: UnsafeBufferPointer<Float>, into bytes: inout [UInt8]) {
        bytes.removeAll(keepingCapacity: true)
        bytes.reserveCapacity(size(count: values.count))
        bytes += header(count: values.count)
        #if _endian(little)
            bytes += UnsafeRawBufferPointer(values)
        #else
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        #endif
    }

    /// Decodes a payload into `values`, which must have the length the payload announces.
    /// - Throws: `CodecError` for a malformed payload or another length; `nonFinite` for NaN or an
    ///   infinity among the values.
    public static func decode(_ bytes: [UInt8], into values: UnsafeMutableBufferPointer<Float>) throws {
        var r = PayloadReader(bytes)
        let header = try CodecHeader.read(from: &r, expected: .identity)
        guard header.count == values.count else {
            throw CodecError(.countMismatch, "payload holds \(header.count) values, expected \(values.count)")
        }
        try r.readFloats(values.count, into: values, "the values")
        try r.finish()
        guard VectorKernels.allFinite(UnsafeBufferPointer(values)) else {
            throw CodecError(.nonFinite, "payload contains NaN or infinite values")
        }
    }
}
