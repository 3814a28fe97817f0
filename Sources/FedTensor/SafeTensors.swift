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

    /// A tensor to write: its name, shape and values, read in place while the file is written (a
    /// tensor's storage or a plain vector, never copied first).
    public struct Source {
        public let name: String
        public let shape: Shape
        let read: ((UnsafeBufferPointer<Float>) throws -> Void) throws -> Void

        public init(name: String, tensor: Tensor) {
            self.name = name
            shape = tensor.shape
            read = { body in try tensor.withUnsafeBufferPointer { try body($0) } }
        }

        /// A vector, as a tensor of shape `[values.count]`.
        public init(name: String, vector values: [Float]) {
            self.name = name
            shape = [values.count]
            read = { body in try values.withUnsafeBufferPointer { try body($0) } }
        }
    }

    /// The safetensors encoding of `tensors`, written in the given order, with `metadata`.
    /// - Throws: `SafeTensorsError` if a name is empty, `__metadata__`, or repeated.
    public static func encode(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]
    ) throws -> [UInt8] {
        try encode(sources: tensors.map { Source(name: $0.name, tensor: $0.tensor) }, metadata: metadata)
    }

    /// The safetensors encoding of `sources`, written in the given order, with `metadata`.
    /// - Throws: `SafeTensorsError` if a name is empty, `__metadata__`, or repeated.
    public static func encode(sources: [Source], metadata: [String: String] = [:]) throws -> [UInt8] {
        let (header, dataByteCount) = try layout(sources, metadata: metadata)
        let total = 8 + header.count + dataByteCount
        return try [UInt8](unsafeUninitializedCapacity: total) { buffer, initializedCount in
            var offset = 0
            try stream(sources, header: header) { bytes in
                UnsafeMutableRawBufferPointer(
                    rebasing: UnsafeMutableRawBufferPointer(buffer)[offset..<offset + bytes.count]
                )
                .copyMemory(from: bytes)
                offset += bytes.count
            }
            initializedCount = total
        }
    }

    /// The file's bytes in order, handed to `append` piece by piece: the header length, the header,
    /// then each tensor's little-endian values through a buffer of 1 MiB (the one byte writer of
    /// ``encode(sources:metadata:)`` and ``write(sources:metadata:to:)``).
    private static func stream(
        _ sources: [Source], header: [UInt8], to append: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try withUnsafeBytes(of: UInt64(header.count).littleEndian) { try append($0) }
        try header.withUnsafeBytes { try append($0) }
        let piece = 1 << 18
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * piece, alignment: 16)
        defer { scratch.deallocate() }
        for source in sources {
            try source.read { values in
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

    /// The encoded header of `sources` (names checked, offsets in the given order) and the size
    /// of the data after it.
    /// - Throws: `SafeTensorsError` if a name is empty, `__metadata__`, or repeated.
    static func layout(_ sources: [Source], metadata: [String: String]) throws -> (header: [UInt8], dataByteCount: Int)
    {
        var entries: [SafeTensorsHeader.Entry] = []
        entries.reserveCapacity(sources.count)
        var seen: Set<String> = []
        var dataByteCount = 0
        for source in sources {
            let name = source.name
            guard !name.isEmpty else {
                throw SafeTensorsError(.invalidName, "cannot write a tensor with an empty name")
            }
            guard name != SafeTensorsHeader.metadataKey else {
                throw SafeTensorsError(.invalidName, "cannot write a tensor named '\(name)': the name is reserved")
            }
            guard seen.insert(name).inserted else {
                throw SafeTensorsError(.duplicateName, "cannot write two tensors named '\(name)'")
            }
            let end = dataByteCount + source.shape.count * MemoryLayout<Float>.size
            entries.append(.init(name: name, shape: source.shape, begin: dataByteCount, end: end))
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
        try write(sources: tensors.map { Source(name: $0.name, tensor: $0.tensor) }, metadata: metadata, to: path)
    }

    /// Writes `sources` and `metadata` to `path` atomically, streamed: never the whole file in memory.
    /// - Throws: `SafeTensorsError` for invalid names, `FileError` if the file cannot be written.
    public static func write(sources: [Source], metadata: [String: String] = [:], to path: String) throws {
        let header = try layout(sources, metadata: metadata).header
        try AtomicFile.write(to: path) { append in try stream(sources, header: header, to: append) }
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
