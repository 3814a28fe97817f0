import Foundation

/// Conversions between the engine's values and the wire contract's messages.
enum Wire {
    /// The wire contract's version (``Fedswift_V1_Join/protocolVersion``).
    static let protocolVersion: UInt32 = 1

    static func vector(_ values: [Float]) -> Fedswift_V1_Vector {
        var v = Fedswift_V1_Vector()
        v.data = values.withUnsafeBytes { Data($0) }
        return v
    }

    /// The floats of a vector message.
    /// - Throws: ``WireError`` if its length is not a multiple of 4.
    static func floats(_ v: Fedswift_V1_Vector, name: String) throws -> [Float] {
        guard v.data.count % 4 == 0 else {
            throw WireError("vector '\(name)' has \(v.data.count) bytes, not a whole number of float32 values")
        }
        var out = [Float](repeating: 0, count: v.data.count / 4)
        out.withUnsafeMutableBytes { dst in v.data.withUnsafeBytes { dst.copyMemory(from: $0) } }
        return out
    }

    static func vectors(_ map: [String: [Float]]) -> [String: Fedswift_V1_Vector] { map.mapValues(vector) }

    static func floats(_ map: [String: Fedswift_V1_Vector]) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, v) in map { out[name] = try floats(v, name: name) }
        return out
    }

    /// `payload` cut into pieces of at most `size` bytes (one empty piece for an empty payload).
    static func chunks(_ payload: [UInt8], size: Int) -> [(offset: Int, data: Data, last: Bool)] {
        precondition(size > 0)
        if payload.isEmpty { return [(0, Data(), true)] }
        return stride(from: 0, to: payload.count, by: size).map { start in
            let end = min(start + size, payload.count)
            return (start, Data(payload[start..<end]), end == payload.count)
        }
    }
}

/// Reassembles a payload from chunks that must arrive in order, without gaps, overlaps or bytes
/// past the announced size.
struct ChunkAssembler {
    let total: Int
    let maximum: Int
    private(set) var bytes: [UInt8] = []
    private(set) var complete = false

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
