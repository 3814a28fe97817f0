/// Reading and writing tensors in the Hugging Face safetensors format, the format PyTorch models are
/// exchanged in.
///
/// A file is an 8-byte little-endian header length `N`, `N` bytes of JSON naming each tensor's dtype,
/// shape and byte range, then the tensors' bytes. FedSwift stores only `F32`, little-endian.
/// ```swift
/// try SafeTensors.write([("fc1.weight", w), ("fc1.bias", b)], metadata: ["format": "pt"], to: path)
/// let file = try SafeTensors.read(path: path)
/// ```
/// Decoding treats its input as hostile: any malformed file throws `SafeTensorsError`, never traps.
public enum SafeTensors {
    /// Headers longer than this are rejected before parsing, as the reference implementation does.
    public static let maximumHeaderByteCount = 100_000_000

    /// The safetensors encoding of `tensors`, written in the given order, with `metadata`.
    /// - Throws: `SafeTensorsError` if a name is empty, `__metadata__`, or repeated.
    public static func encode(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]
    ) throws -> [UInt8] {
        let (header, dataByteCount) = try layout(tensors, metadata: metadata)
        let total = 8 + header.count + dataByteCount
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initializedCount in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw.storeBytes(of: UInt64(header.count).littleEndian, as: UInt64.self)
            header.withUnsafeBytes {
                UnsafeMutableRawBufferPointer(rebasing: raw[8..<8 + header.count]).copyMemory(from: $0)
            }
            var offset = 8 + header.count
            for (_, tensor) in tensors {
                let byteCount = tensor.count * MemoryLayout<Float>.size
                let destination = UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + byteCount])
                tensor.withUnsafeBufferPointer { storeLittleEndian($0, into: destination) }
                offset += byteCount
            }
            initializedCount = total
        }
    }

    /// The encoded header of `tensors` (names checked, offsets in the given order) and the size
    /// of the data after it.
    /// - Throws: `SafeTensorsError` if a name is empty, `__metadata__`, or repeated.
    static func layout(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]
    ) throws -> (header: [UInt8], dataByteCount: Int) {
        var entries: [SafeTensorsHeader.Entry] = []
        entries.reserveCapacity(tensors.count)
        var seen: Set<String> = []
        var dataByteCount = 0
        for (name, tensor) in tensors {
            guard !name.isEmpty else {
                throw SafeTensorsError(.invalidName, "cannot write a tensor with an empty name")
            }
            guard name != SafeTensorsHeader.metadataKey else {
                throw SafeTensorsError(.invalidName, "cannot write a tensor named '\(name)': the name is reserved")
            }
            guard seen.insert(name).inserted else {
                throw SafeTensorsError(.duplicateName, "cannot write two tensors named '\(name)'")
            }
            let end = dataByteCount + tensor.count * MemoryLayout<Float>.size
            entries.append(.init(name: name, shape: tensor.shape, begin: dataByteCount, end: end))
            dataByteCount = end
        }
        return (SafeTensorsHeader(entries: entries, metadata: metadata).encoded(), dataByteCount)
    }

    /// Decodes a safetensors file held in `bytes`.
    /// - Throws: `SafeTensorsError` saying what is malformed, or that a tensor's dtype is not F32.
    public static func decode(_ bytes: [UInt8]) throws -> SafeTensorsFile {
        try bytes.withUnsafeBytes { try decode($0) }
    }

    /// Decodes a safetensors file held in `bytes`, which need not be aligned.
    /// - Throws: `SafeTensorsError` saying what is malformed, or that a tensor's dtype is not F32.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> SafeTensorsFile {
        guard bytes.count >= 8 else {
            throw SafeTensorsError(
                .invalidHeaderLength, "expected at least 8 bytes for the header length, found \(bytes.count)")
        }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(maximumHeaderByteCount) else {
            throw SafeTensorsError(
                .headerTooLarge, "header length \(declared) exceeds the limit of \(maximumHeaderByteCount) bytes")
        }
        let headerByteCount = Int(declared)
        guard headerByteCount <= bytes.count - 8 else {
            throw SafeTensorsError(
                .invalidHeaderLength,
                "header length \(headerByteCount) exceeds the \(bytes.count - 8) bytes after the length prefix")
        }
        let data = UnsafeRawBufferPointer(rebasing: bytes[(8 + headerByteCount)...])
        let header = try SafeTensorsHeader(
            decoding: UnsafeRawBufferPointer(rebasing: bytes[8..<8 + headerByteCount]), dataByteCount: data.count)

        let tensors = try header.layoutInDataOrder(dataByteCount: data.count).map { entry in
            var tensor = Tensor(uninitializedShape: entry.shape)
            tensor.withUnsafeMutableBufferPointer { destination in
                loadLittleEndian(UnsafeRawBufferPointer(rebasing: data[entry.begin..<entry.end]), into: destination)
            }
            return (name: entry.name, tensor: tensor)
        }
        return SafeTensorsFile(tensors: tensors, metadata: header.metadata)
    }

    /// Writes `tensors` and `metadata` to `path` atomically: a crash leaves the old file or the new one.
    /// - Throws: `SafeTensorsError` for invalid names, `FileError` if the file cannot be written.
    public static func write(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to path: String
    ) throws {
        // Streamed: the header, then each tensor through a small buffer, never the whole file in memory.
        let header = try layout(tensors, metadata: metadata).header
        try AtomicFile.write(to: path) { append in
            try withUnsafeBytes(of: UInt64(header.count).littleEndian) { try append($0) }
            try header.withUnsafeBytes { try append($0) }
            let piece = 1 << 18
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * piece, alignment: 16)
            defer { scratch.deallocate() }
            for (_, tensor) in tensors {
                try tensor.withUnsafeBufferPointer { values in
                    var start = 0
                    while start < values.count {
                        let end = min(values.count, start + piece)
                        let bytes = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<4 * (end - start)])
                        storeLittleEndian(UnsafeBufferPointer(rebasing: values[start..<end]), into: bytes)
                        try append(UnsafeRawBufferPointer(bytes))
                        start = end
                    }
                }
            }
        }
    }

    /// Reads and decodes the safetensors file at `path`.
    /// - Throws: `FileError` if the file cannot be read; `SafeTensorsError`, carrying `path`, if it is
    ///   malformed or holds a dtype other than F32.
    public static func read(path: String) throws -> SafeTensorsFile {
        let bytes = try AtomicFile.read(path)
        do {
            return try decode(bytes)
        } catch var error as SafeTensorsError {
            error.path = path
            throw error
        }
    }

    private static func storeLittleEndian(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawBufferPointer
    ) {
        #if _endian(little)
            destination.copyMemory(from: UnsafeRawBufferPointer(source))
        #else
            for (index, value) in source.enumerated() {
                destination.storeBytes(
                    of: value.bitPattern.littleEndian, toByteOffset: index * MemoryLayout<Float>.size, as: UInt32.self)
            }
        #endif
    }

    private static func loadLittleEndian(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>
    ) {
        #if _endian(little)
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: source)
        #else
            for index in destination.indices {
                let bits = source.loadUnaligned(fromByteOffset: index * MemoryLayout<Float>.size, as: UInt32.self)
                destination[index] = Float(bitPattern: UInt32(littleEndian: bits))
            }
        #endif
    }
}
