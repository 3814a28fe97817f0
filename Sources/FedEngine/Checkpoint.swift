import CZlib
import FedTensor

/// A run's resumable state in one file: named float vectors (bit-exact) and named text values,
/// stored as safetensors with a CRC-32 over everything, written atomically.
///
/// ```swift
/// var checkpoint = Checkpoint()
/// checkpoint.vectors["global"] = weights
/// checkpoint.values["round"] = "12"
/// try checkpoint.write(to: dir + "/" + Checkpoint.fileName)
/// let back = try Checkpoint.read(path: dir + "/" + Checkpoint.fileName)
/// ```
public struct Checkpoint: Sendable {
    /// The file name in a run directory.
    public static let fileName = "checkpoint.safetensors"
    static let format = "fedswift-checkpoint-1"

    public var vectors: [String: [Float]] = [:]
    public var values: [String: String] = [:]

    public init() {}

    /// Writes the checkpoint to `path` atomically: a crash leaves the previous checkpoint or this one.
    public func write(to path: String) throws {
        let names = vectors.keys.sorted()
        var metadata = values
        metadata["fedswift.format"] = Self.format
        metadata["fedswift.crc32"] = String(checksum(names: names))
        // Streamed from the vectors themselves: no copy of a large model while it is written.
        try SafeTensors.write(
            sources: names.map { .init(name: $0, vector: vectors[$0]!) }, metadata: metadata, to: path)
    }

    /// Reads and verifies the checkpoint at `path`.
    /// - Throws: ``CheckpointError`` if the file is missing, not a checkpoint, or corrupt.
    public static func read(path: String) throws -> Checkpoint {
        let file: SafeTensorsFile
        do {
            file = try SafeTensors.read(path: path)
        } catch {
            throw CheckpointError("\(path) cannot be read as a checkpoint: \(error)")
        }
        guard file.metadata["fedswift.format"] == format else {
            throw CheckpointError("\(path) is not a FedSwift checkpoint (or one of another format)")
        }
        var checkpoint = Checkpoint()
        for (name, tensor) in file.tensors {
            guard tensor.shape.dims.count == 1 else { throw CheckpointError("\(path): '\(name)' is not a vector") }
            checkpoint.vectors[name] = tensor.withUnsafeBufferPointer { Array($0) }
        }
        checkpoint.values = file.metadata.filter { !$0.key.hasPrefix("fedswift.") }
        let expected = file.metadata["fedswift.crc32"]
        guard expected == String(checkpoint.checksum(names: checkpoint.vectors.keys.sorted())) else {
            throw CheckpointError("\(path) is corrupt: its checksum does not match its contents")
        }
        return checkpoint
    }

    /// The vector `name`.
    /// - Throws: ``CheckpointError`` if it is missing or does not have `count` elements.
    public func vector(_ name: String, count: Int? = nil) throws -> [Float] {
        guard let v = vectors[name] else { throw CheckpointError("the checkpoint has no '\(name)'") }
        if let count, v.count != count {
            throw CheckpointError("the checkpoint's '\(name)' has \(v.count) values, expected \(count)")
        }
        return v
    }

    /// The text value `name`.
    public func value(_ name: String) throws -> String {
        guard let v = values[name] else { throw CheckpointError("the checkpoint has no value '\(name)'") }
        return v
    }

    /// The integer list stored by ``setIntegers(_:_:)``.
    public func integers(_ name: String) throws -> [Int] {
        let text = try value(name)
        if text.isEmpty { return [] }
        return try text.split(separator: ",").map {
            guard let i = Int($0) else { throw CheckpointError("the checkpoint's '\(name)' is not a list of integers") }
            return i
        }
    }

    public mutating func setIntegers(_ name: String, _ list: [Int]) {
        values[name] = list.map(String.init).joined(separator: ",")
    }

    /// Stored vectors whose names start with `prefix`, by the rest of their name.
    public func vectors(under prefix: String) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, v) in vectors where name.hasPrefix(prefix) { out[String(name.dropFirst(prefix.count))] = v }
        return out
    }

    /// CRC-32 over the names, the vectors' bytes and the values, in name order.
    private func checksum(names: [String]) -> UInt {
        var crc: uLong = crc32(0, nil, 0)
        func add(_ bytes: UnsafeRawBufferPointer) {
            var offset = 0
            while offset < bytes.count {
                let n = min(bytes.count - offset, 1 << 30)
                crc = crc32(crc, bytes.baseAddress!.assumingMemoryBound(to: Bytef.self) + offset, uInt(n))
                offset += n
            }
        }
        for name in names {
            Array(name.utf8).withUnsafeBytes(add)
            vectors[name]!.withUnsafeBytes(add)
        }
        for key in values.keys.sorted() {
            Array((key + "=" + values[key]! + "\n").utf8).withUnsafeBytes(add)
        }
        return UInt(crc)
    }
}

/// A checkpoint that cannot be used: missing, corrupt, or from another experiment.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
