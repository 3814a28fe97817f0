import Foundation

#if !_endian(little)
    #error("the wire format's float32 values are written in the machine's byte order, which must be little-endian")
#endif

/// Conversions between the engine's values and the wire contract's messages.
enum Wire {
    /// The wire contract's version (``Fedswift_V1_Join/protocolVersion``).
    static let protocolVersion: UInt32 = 2

    /// A payload on the wire: `head`, then `values` (little-endian float32), then the values of
    /// `vectors` by sorted name, cut into chunks of at most `size` bytes without being concatenated
    /// first (each byte is copied once, into its chunk); with the layout that tells the vectors
    /// apart, so vectors of any size travel in a chunked payload.
    static func chunks(
        _ head: [UInt8], values: [Float] = [], vectors: [String: [Float]], size: Int
    ) -> (chunks: [Chunk], layout: [Fedswift_V1_VectorLayout], total: Int) {
        let names = vectors.keys.sorted()
        let total = head.count + 4 * values.count + names.reduce(0) { $0 + 4 * vectors[$1]!.count }
        var writer = ChunkWriter(size: size, total: total)
        head.withUnsafeBytes { writer.append($0) }
        values.withUnsafeBytes { writer.append($0) }
        var layout: [Fedswift_V1_VectorLayout] = []
        for name in names {
            vectors[name]!.withUnsafeBytes { writer.append($0) }
            var entry = Fedswift_V1_VectorLayout()
            entry.name = name
            entry.count = UInt64(vectors[name]!.count)
            layout.append(entry)
        }
        return (writer.finish(), layout, total)
    }

    /// One piece of a payload: where it starts, its bytes, and whether it is the last.
    typealias Chunk = (offset: Int, data: Data, last: Bool)

    /// Splits a payload made by ``chunks(_:values:vectors:size:)`` (reassembled): the vectors of `layout` are taken off its
    /// end (in place), the leading bytes stay.
    /// - Throws: ``WireError`` when the vectors do not fit in the payload or a name repeats.
    static func unpack(_ bytes: inout [UInt8], layout: [Fedswift_V1_VectorLayout]) throws -> [String: [Float]] {
        var vectorBytes = 0
        for entry in layout {
            guard entry.count <= UInt64(bytes.count / 4) else {
                throw WireError("vector '\(entry.name)' of \(entry.count) values does not fit in \(bytes.count) bytes")
            }
            vectorBytes += 4 * Int(entry.count)
        }
        guard vectorBytes <= bytes.count else {
            throw WireError("the vectors' \(vectorBytes) bytes do not fit in a payload of \(bytes.count)")
        }
        let split = bytes.count - vectorBytes
        var vectors: [String: [Float]] = [:]
        var at = split
        for entry in layout {
            let n = Int(entry.count)
            var values = [Float](repeating: 0, count: n)
            values.withUnsafeMutableBytes { dst in
                bytes.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[at..<(at + 4 * n)])) }
            }
            guard vectors.updateValue(values, forKey: entry.name) == nil else {
                throw WireError("vector '\(entry.name)' appears twice")
            }
            at += 4 * n
        }
        bytes.removeLast(vectorBytes)
        return vectors
    }

    /// The largest upload the coordinator accepts for a model of `parameterCount` values in
    /// `tensors` tensors with vectors of `vectorValues` values in all: 12 bytes a parameter (the
    /// most a catalog codec spends: QSGD with one value a bucket spends a float32 norm and up to 49
    /// bits of Elias-gamma level on each; a sparse format keeping every value, 8), deflate's
    /// worst-case growth, the vectors, and room for the headers. Every catalog codec stays below
    /// it (`WireTests`).
    static func maximumUpload(parameterCount: Int, tensors: Int, vectorValues: Int) -> Int {
        12 * parameterCount + parameterCount / 64 + 4 * vectorValues + 256 * (tensors + 1) + 65_536
    }

    /// `payload` cut into pieces of at most `size` bytes (one empty piece for an empty payload).
    static func chunks(_ payload: [UInt8], size: Int) -> [Chunk] {
        var writer = ChunkWriter(size: size, total: payload.count)
        payload.withUnsafeBytes { writer.append($0) }
        return writer.finish()
    }
}

/// Cuts bytes appended piece by piece into chunks of at most `size` bytes, each allocated once at
/// its final size.
struct ChunkWriter {
    let size: Int
    let total: Int
    private var done: [Wire.Chunk] = []
    private var current = Data()
    private var offset = 0

    /// A writer for a payload of `total` bytes in chunks of at most `size`.
    init(size: Int, total: Int) {
        precondition(size > 0 && total >= 0)
        self.size = size
        self.total = total
        current.reserveCapacity(min(size, total))
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes[...]
        while !rest.isEmpty {
            if current.count == size {
                done.append((offset, current, false))
                offset += size
                current = Data(capacity: min(size, total - offset))
            }
            let n = min(size - current.count, rest.count)
            current.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(n)))
            rest = rest.dropFirst(n)
        }
    }

    /// The chunks, the last one marked (an empty payload is one empty chunk).
    /// - Precondition: exactly `total` bytes were appended.
    consuming func finish() -> [Wire.Chunk] {
        precondition(offset + current.count == total, "the payload's size was announced as \(total)")
        done.append((offset, current, true))
        return done
    }
}

/// Reassembles a payload from chunks that must arrive in order, without gaps, overlaps or bytes
/// past the announced size.
struct ChunkAssembler {
    let total: Int
    let maximum: Int
    private(set) var bytes: [UInt8] = []
    private(set) var complete = false

    /// The payload, handed over without a copy (the assembler is left empty).
    mutating func take() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }

    /// - Throws: ``WireError`` for an announced size above `maximum`.
    init(total: Int, maximum: Int) throws {
        guard total >= 0, total <= maximum else {
            throw WireError("announced payload of \(total) bytes is above the limit of \(maximum)")
        }
        self.total = total
        self.maximum = maximum
        bytes.reserveCapacity(total)
    }

    /// Adds the chunk at `offset`.
    /// - Throws: ``WireError`` for a chunk out of order, repeated, past the end, or after the last.
    mutating func add(offset: Int, data: Data, last: Bool) throws {
        guard !complete else { throw WireError("a chunk arrived after the last one") }
        guard offset == bytes.count else {
            throw WireError(
                "chunk at offset \(offset) arrived where \(bytes.count) was expected (out of order or repeated)")
        }
        guard bytes.count + data.count <= total else {
            throw WireError("chunk ends at \(bytes.count + data.count), past the announced \(total) bytes")
        }
        bytes += data
        if last {
            guard bytes.count == total else {
                throw WireError("the last chunk ends at \(bytes.count), the announced size is \(total)")
            }
            complete = true
        }
    }
}

/// A message that breaks the wire contract.
public struct WireError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
