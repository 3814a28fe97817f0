/// The JSON header of a safetensors file: where each tensor's bytes lie, and string metadata.
///
/// Decoding checks everything that can be checked without the data: names, dtype, shapes, and that
/// each tensor's byte range lies inside the data region and has the size its shape implies.
/// `layoutInDataOrder()` then checks that the ranges tile the data region exactly.
struct SafeTensorsHeader {
    struct Entry {
        var name: String
        var shape: Shape
        /// Byte range relative to the start of the data region.
        var begin: Int
        var end: Int
    }

    static let metadataKey = "__metadata__"

    /// Entries in header order.
    var entries: [Entry]
    var metadata: [String: String]

    init(entries: [Entry], metadata: [String: String]) {
        self.entries = entries
        self.metadata = metadata
    }

    /// Decodes and validates the header `bytes` for a data region of `dataByteCount` bytes.
    init(decoding bytes: UnsafeRawBufferPointer, dataByteCount: Int) throws {
        let text = String(decoding: bytes, as: UTF8.self)
        if !text.utf8.elementsEqual(bytes) {
            // Decoding replaced something with U+FFFD; the first difference is at or after the bad byte.
            let valid = zip(text.utf8, bytes).prefix { $0 == $1 }.count
            throw SafeTensorsError(.invalidUTF8, "header is not valid UTF-8: invalid byte near offset \(valid)")
        }
        guard bytes.first == UInt8(ascii: "{") else {
            throw SafeTensorsError(.invalidHeader, "header must start with '{' (a JSON object)")
        }
        guard case .object(let members) = try HeaderJSON.parse(bytes) else {
            throw SafeTensorsError(.invalidHeader, "header must be a JSON object")
        }

        var entries: [Entry] = []
        var metadata: [String: String]?
        // Swift compares strings by canonical equivalence, so names that differ only in Unicode
        // normalisation count as duplicates: they could not both be looked up by name anyway.
        var seen: Set<String> = []
        entries.reserveCapacity(members.count)
        for (key, value) in members {
            guard seen.insert(key).inserted else {
                throw SafeTensorsError(.duplicateName, "header names '\(key)' more than once")
            }
            if key == Self.metadataKey {
                metadata = try Self.decodeMetadata(value)
            } else {
                entries.append(try Self.decodeEntry(name: key, value, dataByteCount: dataByteCount))
            }
        }
        self.entries = entries
        self.metadata = metadata ?? [:]
    }

    private static func decodeMetadata(_ value: HeaderJSON) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw SafeTensorsError(
                .invalidHeader, "\"\(metadataKey)\" must be an object of strings, found \(value.kindName)")
        }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let string) = value else {
                throw SafeTensorsError(
                    .invalidHeader, "metadata value for '\(key)' must be a string, found \(value.kindName)")
            }
            guard metadata.updateValue(string, forKey: key) == nil else {
                throw SafeTensorsError(.invalidHeader, "metadata names key '\(key)' more than once")
            }
        }
        return metadata
    }

    private static func decodeEntry(name: String, _ value: HeaderJSON, dataByteCount: Int) throws -> Entry {
        guard !name.isEmpty else { throw SafeTensorsError(.invalidName, "header has a tensor with an empty name") }
        guard case .object(let members) = value else {
            throw SafeTensorsError(.invalidHeader, "tensor '\(name)' must be an object, found \(value.kindName)")
        }
        var fields: [String: HeaderJSON] = [:]
        for (key, value) in members {
            guard fields.updateValue(value, forKey: key) == nil else {
                throw SafeTensorsError(.invalidHeader, "tensor '\(name)' has key \"\(key)\" more than once")
            }
        }
        // Keys other than the three below are ignored, as the reference implementation does.
        func field(_ key: String) throws -> HeaderJSON {
            guard let value = fields[key] else {
                throw SafeTensorsError(.invalidHeader, "tensor '\(name)' has no \"\(key)\"")
            }
            return value
        }
        func integers(_ key: String, _ value: HeaderJSON) throws -> [Int] {
            guard case .array(let elements) = value else {
                throw SafeTensorsError(
                    .invalidHeader,
                    "tensor '\(name)': \"\(key)\" must be an array of integers, found \(value.kindName)")
            }
            return try elements.map { element in
                guard case .integer(let integer) = element else {
                    throw SafeTensorsError(
                        .invalidHeader,
                        "tensor '\(name)': \"\(key)\" must hold non-negative integers, found \(element.kindName)")
                }
                guard let int = Int(exactly: integer) else {
                    throw SafeTensorsError(
                        key == "shape" ? .shapeOverflow : .offsetsOutOfRange,
                        "tensor '\(name)': \"\(key)\" value \(integer) exceeds \(Int.max)")
                }
                return int
            }
        }

        guard case .string(let dtype) = try field("dtype") else {
            throw SafeTensorsError(.invalidHeader, "tensor '\(name)': \"dtype\" must be a string")
        }
        guard dtype == "F32" else {
            throw SafeTensorsError(
                .unsupportedDType, "tensor '\(name)' has dtype \(dtype); only F32 is supported")
        }

        let dims = try integers("shape", try field("shape"))
        // Every non-zero dimension's product must fit, so no later stride or size computation can
        // overflow, whatever order it multiplies in.
        var nonZeroProduct = 1
        for dim in dims where dim != 0 {
            let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw SafeTensorsError(
                    .shapeOverflow, "tensor '\(name)': the product of shape \(dims) overflows Int")
            }
            nonZeroProduct = product
        }
        let shape = Shape(dims)
        let count = dims.contains(0) ? 0 : nonZeroProduct
        let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        guard !byteOverflow else {
            throw SafeTensorsError(
                .shapeOverflow, "tensor '\(name)': shape \(dims) needs more than \(Int.max) bytes")
        }

        let offsets = try integers("data_offsets", try field("data_offsets"))
        guard offsets.count == 2 else {
            throw SafeTensorsError(
                .invalidHeader,
                "tensor '\(name)': \"data_offsets\" must be [begin, end], found \(offsets.count) integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw SafeTensorsError(
                .reversedOffsets, "tensor '\(name)': data_offsets [\(begin), \(end)] end before they begin")
        }
        guard end <= dataByteCount else {
            throw SafeTensorsError(
                .offsetsOutOfRange,
                "tensor '\(name)': data_offsets [\(begin), \(end)] run past the \(dataByteCount)-byte data region")
        }
        guard end - begin == byteCount else {
            throw SafeTensorsError(
                .sizeMismatch,
                "tensor '\(name)': shape \(shape) of F32 needs \(byteCount) bytes, "
                    + "but data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        return Entry(name: name, shape: shape, begin: begin, end: end)
    }

    /// The entries sorted by position in the data region, checked to cover its `dataByteCount` bytes
    /// exactly once: no overlaps, holes or trailing bytes. Empty tensors keep their header order.
    func layoutInDataOrder(dataByteCount: Int) throws -> [Entry] {
        let sorted = entries.indices.sorted {
            let (a, b) = (entries[$0], entries[$1])
            return (a.begin, a.end, $0) < (b.begin, b.end, $1)
        }.map { entries[$0] }
        var position = 0
        var previous: String?
        for entry in sorted {
            if entry.begin < position {
                throw SafeTensorsError(
                    .overlappingTensors,
                    "tensor '\(entry.name)' starts at byte \(entry.begin), inside tensor '\(previous ?? "")' "
                        + "which ends at byte \(position)")
            }
            if entry.begin > position {
                throw SafeTensorsError(
                    .uncoveredBytes,
                    "data bytes \(position)..<\(entry.begin) belong to no tensor; expected tensor '\(entry.name)' "
                        + "to start at byte \(position)")
            }
            position = entry.end
            previous = entry.name
        }
        guard position == dataByteCount else {
            throw SafeTensorsError(
                .uncoveredBytes,
                "data region has \(dataByteCount) bytes but its tensors cover only the first \(position)")
        }
        return sorted
    }

    /// The header as JSON, padded with spaces to a multiple of 8 bytes so the data region stays aligned.
    /// Metadata comes first with keys sorted, then tensors in entry order, as the reference writer does.
    func encoded() -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        func append(_ text: String) { json.append(contentsOf: text.utf8) }
        if !metadata.isEmpty {
            Self.appendQuoted(Self.metadataKey, to: &json)
            append(":{")
            for (index, (key, value)) in metadata.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { append(",") }
                Self.appendQuoted(key, to: &json)
                append(":")
                Self.appendQuoted(value, to: &json)
            }
            append("}")
        }
        for (index, entry) in entries.enumerated() {
            if index > 0 || !metadata.isEmpty { append(",") }
            Self.appendQuoted(entry.name, to: &json)
            let dims = entry.shape.dims.map(String.init).joined(separator: ",")
            append(":{\"dtype\":\"F32\",\"shape\":[\(dims)],\"data_offsets\":[\(entry.begin),\(entry.end)]}")
        }
        append("}")
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        return json
    }

    /// Appends `string` as a JSON string literal, escaping as serde_json does so output matches the
    /// reference implementation byte for byte.
    private static func appendQuoted(_ string: String, to json: inout [UInt8]) {
        json.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): json.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): json.append(contentsOf: #"\\"#.utf8)
            case 0x08: json.append(contentsOf: #"\b"#.utf8)
            case 0x0C: json.append(contentsOf: #"\f"#.utf8)
            case 0x0A: json.append(contentsOf: #"\n"#.utf8)
            case 0x0D: json.append(contentsOf: #"\r"#.utf8)
            case 0x09: json.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                json.append(contentsOf: #"\u00"#.utf8)
                json.append(hex[Int(byte >> 4)])
                json.append(hex[Int(byte & 0xF)])
            default: json.append(byte)
            }
        }
        json.append(UInt8(ascii: "\""))
    }
}
