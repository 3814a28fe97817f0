import FedTestSupport
import Foundation
import Testing

@testable import FedTensor

/// A safetensors file built from its parts, for crafting malformed input.
func safetensorsBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: (declaredLength ?? UInt64(json.count)).littleEndian, Array.init) + json + data
}

/// The bit patterns of a tensor's elements, so NaN payloads and signed zeros compare exactly.
func bits(_ tensor: Tensor) -> [UInt32] { tensor.scalars.map(\.bitPattern) }

@Suite struct SafeTensorsTests {
    @Test func roundTripIsBitExactInGivenOrderWithMetadata() throws {
        let tensors: [(name: String, tensor: Tensor)] = [
            (
                "fc.weight",
                Tensor(shape: [2, 3], scalars: [1, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, 3])
            ),
            ("nan", Tensor(shape: [2], scalars: [Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFFA0_0001)])),
            ("scalar", Tensor(shape: [], scalars: [42.5])),
            ("empty", Tensor(shape: [0, 4], scalars: [])),
            ("a\"quoted\\name\n\u{1}é🙂", Tensor(shape: [1, 1, 1], scalars: [-7])),
            ("another.empty", Tensor(shape: [3, 0], scalars: [])),
        ]
        let metadata = ["format": "pt", "round": "17", "quote\"\\": "tab\t\u{0}nul", "": ""]
        let bytes = try SafeTensors.encode(tensors, metadata: metadata)
        let file = try SafeTensors.decode(bytes)

        #expect(file.names == tensors.map(\.name))
        #expect(file.metadata == metadata)
        for ((name, expected), (decodedName, decoded)) in zip(tensors, file.tensors) {
            #expect(decodedName == name)
            #expect(decoded.shape == expected.shape)
            #expect(bits(decoded) == bits(expected))
            #expect(file[name].map(bits) == bits(expected))
        }
        #expect(file["missing"] == nil)
    }

    @Test func encodesTinyFileExactlyAsTheSpecificationLaysItOut() throws {
        let bytes = try SafeTensors.encode([("x", Tensor(shape: [2], scalars: [1, -2]))])
        let header = #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#  // 54 bytes, padded to 56
        let expected: [UInt8] =
            [56, 0, 0, 0, 0, 0, 0, 0] + Array(header.utf8) + [0x20, 0x20]
            + [0x00, 0x00, 0x80, 0x3F] + [0x00, 0x00, 0x00, 0xC0]
        #expect(bytes == expected)
    }

    @Test func emptyFileHasAnEmptyObjectHeader() throws {
        let bytes = try SafeTensors.encode([])
        #expect(bytes == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let file = try SafeTensors.decode(bytes)
        #expect(file.tensors.isEmpty)
        #expect(file.metadata.isEmpty)
    }

    @Test func decodesFileWrittenByPythonSafetensors() throws {
        let file = try SafeTensors.decode(ReferenceFiles.model)
        #expect(file.names == ["conv1.bias", "conv1.weight", "empty", "scalar"])
        #expect(file.metadata == ["format": "pt"])
        #expect(file["conv1.bias"]?.shape == [2])
        #expect(file["conv1.bias"].map(bits) == [0x7F80_0000, 0xFF80_0000])
        #expect(file["conv1.weight"]?.shape == [2, 1, 2, 2])
        #expect(
            file["conv1.weight"].map(bits) == [
                0x3F80_0000, 0x8000_0000, 0x3F00_0000, 0xBFC0_0000, 0x7F7F_FFFF, 0x0000_0001, 0xC010_0000, 0x42C8_0000,
            ])
        #expect(file["empty"]?.shape == [0, 3])
        #expect(file["empty"]?.count == 0)
        #expect(file["scalar"]?.shape == [])
        #expect(file["scalar"]?.scalars == [7])
    }

    @Test func encodesByteForByteLikePythonSafetensors() throws {
        let reference = try SafeTensors.decode(ReferenceFiles.model)
        #expect(try SafeTensors.encode(reference.tensors, metadata: reference.metadata) == ReferenceFiles.model)

        let escapes = try SafeTensors.decode(ReferenceFiles.escapes)
        #expect(escapes.names == ["a\"\\\n\u{1}é/"])
        #expect(escapes.metadata == ["k\t": "v\u{7F}"])
        #expect(try SafeTensors.encode(escapes.tensors, metadata: escapes.metadata) == ReferenceFiles.escapes)
    }

    @Test func writeAndReadThroughTheFileSystem() throws {
        let directory = try TemporaryDirectory(prefix: "safetensors")
        let path = directory.file("model.safetensors")
        let weight = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        try SafeTensors.write([("w", weight)], metadata: ["epoch": "3"], to: path)
        #expect(try AtomicFile.read(path) == SafeTensors.encode([("w", weight)], metadata: ["epoch": "3"]))
        let file = try SafeTensors.read(path: path)
        #expect(file["w"] == weight)
        #expect(file.metadata == ["epoch": "3"])
    }

    @Test func aFileWrittenPieceByPieceIsTheEncodingByteForByte() throws {
        // Tensors larger than the writer's 2^18-value buffer, and one that is not a multiple of it.
        let directory = try TemporaryDirectory(prefix: "safetensors")
        let path = directory.file("large.safetensors")
        let a = Tensor(shape: [600_001], scalars: (0..<600_001).map { Float(sin(Double($0) * 0.37)) })
        let b = Tensor(shape: [2, 3], scalars: [1, -2, 3, .infinity, 0, -0.0])
        let tensors = [
            (name: "b", tensor: b), (name: "a", tensor: a), (name: "empty", tensor: Tensor(shape: [0], scalars: [])),
        ]
        try SafeTensors.write(tensors, metadata: ["k": "v"], to: path)
        #expect(try AtomicFile.read(path) == SafeTensors.encode(tensors, metadata: ["k": "v"]))
        #expect(try SafeTensors.read(path: path)["a"] == a)
        // Plain vectors write the same bytes as the tensors of shape [n] holding them, in place.
        let vectors = [("b", [Float](b.scalars)), ("a", a.scalars), ("empty", [])].map {
            SafeTensors.Source(name: $0.0, vector: $0.1)
        }
        let flat = tensors.map { (name: $0.name, tensor: Tensor(shape: [$0.tensor.count], scalars: $0.tensor.scalars)) }
        try SafeTensors.write(sources: vectors, metadata: ["k": "v"], to: path)
        #expect(try AtomicFile.read(path) == SafeTensors.encode(flat, metadata: ["k": "v"]))
        #expect(
            try SafeTensors.encode(sources: vectors, metadata: ["k": "v"])
                == SafeTensors.encode(flat, metadata: ["k": "v"]))
    }

    @Test func readErrorsNameTheFile() throws {
        let directory = try TemporaryDirectory(prefix: "safetensors")
        let path = directory.file("model.safetensors")
        #expect(throws: FileError.self) { try SafeTensors.read(path: path) }
        try AtomicFile.write([1, 2, 3], to: path)
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.read(path: path) }
        #expect(error?.code == .invalidHeaderLength)
        #expect(error?.path == path)
        #expect(error?.description.hasPrefix(path + ": ") == true)
    }

    @Test func encoderRejectsDuplicateNames() {
        let t = Tensor(shape: [1], scalars: [1])
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.encode([("a", t), ("b", t), ("a", t)])
        }
        #expect(error?.code == .duplicateName)
        #expect(error?.message.contains("'a'") == true)
    }

    @Test(arguments: ["", "__metadata__"])
    func encoderRejectsEmptyAndReservedNames(name: String) {
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.encode([(name, Tensor(shape: [1], scalars: [1]))])
        }
        #expect(error?.code == .invalidName)
    }

    @Test(arguments: MalformedFile.all)
    func decoderRejectsMalformedFile(_ malformed: MalformedFile) {
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.decode(malformed.bytes) }
        #expect(error?.code == malformed.code)
        for fragment in malformed.messageFragments {
            #expect(error?.message.contains(fragment) == true, "message: \(error?.message ?? "-")")
        }
    }

    @Test func deeplyNestedHeaderIsRejectedWithoutExhaustingTheStack() {
        let header = #"{"a":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.decode(safetensorsBytes(header: header))
        }
        #expect(error?.code == .invalidJSON)
        #expect(error?.message.contains("nesting") == true)
    }

    /// Random and mutated payloads: decoding must return or throw, never trap, and whatever it
    /// accepts must survive a re-encode unchanged.
    @Test func fuzzedPayloadsDecodeOrThrow() throws {
        var rng = SeededRNG(seed: 2024, stream: "safetensors-fuzz")
        let seeds = [
            ReferenceFiles.model, ReferenceFiles.escapes,
            try SafeTensors.encode(
                [("a", Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])), ("b", Tensor(shape: [], scalars: [5]))],
                metadata: ["k": "v"]),
        ]
        let jsonBytes = Array(#"{}[]":,\/0123456789 -.eEu"#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xFF]
        var accepted = 0
        var rejected = 0
        for _ in 0..<2000 {
            var bytes = seeds[rng.nextInt(below: seeds.count)]
            let headerEnd = 8 + Int(bytes[0])  // seed headers are shorter than 256 bytes
            switch rng.nextInt(below: 8) {
            case 7 where bytes.count > headerEnd:
                // Data bytes only: the file stays valid and any bit pattern, NaNs included, must survive.
                for _ in 0...rng.nextInt(below: 4) {
                    let index = headerEnd + rng.nextInt(below: bytes.count - headerEnd)
                    bytes[index] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 0:
                bytes.removeLast(rng.nextInt(below: bytes.count + 1))
            case 1:
                for _ in 0...rng.nextInt(below: 4) {
                    bytes[rng.nextInt(below: bytes.count)] ^= UInt8(1 << rng.nextInt(below: 8))
                }
            case 2:
                for _ in 0...rng.nextInt(below: 3) {
                    bytes[8 + rng.nextInt(below: headerEnd - 8)] = jsonBytes[rng.nextInt(below: jsonBytes.count)]
                }
            case 3:
                let length = rng.nextInt(below: 2) == 0 ? rng.next() : UInt64(rng.nextInt(below: bytes.count + 16))
                withUnsafeBytes(of: length.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            case 4:
                bytes = (0..<rng.nextInt(below: 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if bytes.count >= 8 { bytes[0] = UInt8(rng.nextInt(below: bytes.count - 7)) }
                bytes.replaceSubrange(min(1, bytes.count)..<min(8, bytes.count), with: repeatElement(0, count: 7))
            case 5:
                // Duplicate a slice of the header and fix up the length, so the JSON shifts but stays framed.
                let start = 8 + rng.nextInt(below: headerEnd - 8)
                let end = min(headerEnd, start + rng.nextInt(below: 40))
                bytes.insert(contentsOf: bytes[start..<end], at: end)
                withUnsafeBytes(of: UInt64(headerEnd - 8 + end - start).littleEndian) {
                    bytes.replaceSubrange(0..<8, with: $0)
                }
            default:
                bytes.removeSubrange(8 + rng.nextInt(below: headerEnd - 8)..<headerEnd)
            }

            do {
                let file = try SafeTensors.decode(bytes)
                accepted += 1
                let again = try SafeTensors.decode(try SafeTensors.encode(file.tensors, metadata: file.metadata))
                #expect(again.names == file.names)
                #expect(again.metadata == file.metadata)
                #expect(again.tensors.map { bits($0.tensor) } == file.tensors.map { bits($0.tensor) })
                #expect(again.tensors.map(\.tensor.shape) == file.tensors.map(\.tensor.shape))
            } catch is SafeTensorsError {
                rejected += 1
            }
        }
        // Both outcomes occur, so the mutations neither all break nor all miss the format.
        #expect(accepted > 100)
        #expect(rejected > 100)
    }
}

/// A malformed safetensors payload and the error it must raise.
struct MalformedFile: Sendable, CustomTestStringConvertible {
    var label: String
    var bytes: [UInt8]
    var code: SafeTensorsError.Code
    var messageFragments: [String]

    var testDescription: String { label }

    init(_ label: String, _ bytes: [UInt8], _ code: SafeTensorsError.Code, _ messageFragments: [String] = []) {
        self.label = label
        self.bytes = bytes
        self.code = code
        self.messageFragments = messageFragments
    }

    init(
        _ label: String, header: String, data: [UInt8] = [], _ code: SafeTensorsError.Code,
        _ messageFragments: [String] = []
    ) {
        self.init(label, safetensorsBytes(header: header, data: data), code, messageFragments)
    }

    /// A header entry for an F32 tensor.
    static func entry(_ name: String, shape: String, offsets: String, dtype: String = "F32") -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    static let four: [UInt8] = [0, 0, 128, 63]

    static let all: [MalformedFile] = [
        // Framing.
        .init("empty input", [], .invalidHeaderLength, ["at least 8 bytes", "found 0"]),
        .init("shorter than the length prefix", [1, 0, 0], .invalidHeaderLength, ["found 3"]),
        .init(
            "header length past the end", safetensorsBytes(header: "{}", declaredLength: 3), .invalidHeaderLength,
            ["header length 3", "2 bytes"]),
        .init(
            "header length over 100 MB", safetensorsBytes(header: "{}", declaredLength: 100_000_001), .headerTooLarge,
            ["100000001", "100000000"]),
        .init(
            "header length 2^64-1", safetensorsBytes(header: "{}", declaredLength: .max), .headerTooLarge),
        .init("empty header", header: "", .invalidHeader, ["start with '{'"]),
        .init("header not an object", header: "[]", .invalidHeader, ["start with '{'"]),
        .init(
            "invalid UTF-8", [6, 0, 0, 0, 0, 0, 0, 0] + Array(#"{"a"#.utf8) + [0xFF, 0x22, 0x7D], .invalidUTF8,
            ["UTF-8"]),
        .init("overlong UTF-8", [5, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0x22, 0xC0, 0xAF, 0x22], .invalidUTF8),

        // JSON syntax.
        .init("missing value", header: #"{"a":}"#, .invalidJSON, ["found '}'"]),
        .init("unterminated object", header: #"{"a":{}"#, .invalidJSON, ["end of header"]),
        .init("trailing garbage", header: "{} x", .invalidJSON, ["end of header after", "found 'x'"]),
        .init("unterminated string", header: #"{"abc"#, .invalidJSON, ["closing a string"]),
        .init("raw control character in string", header: "{\"a\nb\":{}}", .invalidJSON, ["control character"]),
        .init("bad escape", header: #"{"a\x":{}}"#, .invalidJSON, ["after a backslash"]),
        .init("lone low surrogate", header: #"{"\udc00":{}}"#, .invalidJSON, ["lone low surrogate"]),
        .init("unpaired high surrogate", header: #"{"\ud800x":{}}"#, .invalidJSON, ["low surrogate"]),
        .init("short unicode escape", header: #"{"\u12":{}}"#, .invalidJSON, ["4 hex digits"]),
        .init("negative integer", header: #"{"a":{"shape":[-1]}}"#, .invalidJSON, ["found '-'"]),
        .init("fraction", header: #"{"a":{"shape":[1.5]}}"#, .invalidJSON, ["no fractions"]),
        .init("exponent", header: #"{"a":{"shape":[1e3]}}"#, .invalidJSON, ["no fractions"]),
        .init("leading zero", header: #"{"a":{"shape":[01]}}"#, .invalidJSON, ["leading zeros"]),
        .init("integer over 2^64", header: #"{"a":{"shape":[18446744073709551616]}}"#, .invalidJSON, ["2^64"]),
        .init("literal true", header: #"{"a":true}"#, .invalidJSON, ["found 't'"]),
        .init("missing comma", header: #"{"a":{} "b":{}}"#, .invalidJSON, ["',' or '}'"]),
        .init("unquoted key", header: #"{a:{}}"#, .invalidJSON, ["object key"]),

        // Header structure.
        .init("entry not an object", header: #"{"w":[]}"#, .invalidHeader, ["'w'", "an array"]),
        .init(
            "missing dtype", header: #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, data: four, .invalidHeader,
            ["'w'", "\"dtype\""]),
        .init(
            "missing shape", header: #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: four, .invalidHeader,
            ["'w'", "\"shape\""]),
        .init(
            "missing data_offsets", header: #"{"w":{"dtype":"F32","shape":[1]}}"#, data: four, .invalidHeader,
            ["'w'", "\"data_offsets\""]),
        .init(
            "dtype not a string", header: #"{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, data: four,
            .invalidHeader, ["\"dtype\" must be a string"]),
        .init(
            "shape not an array", header: "{" + entry("w", shape: #""1""#, offsets: "[0,4]") + "}", data: four,
            .invalidHeader, ["\"shape\" must be an array", "found a string"]),
        .init(
            "shape holding a string", header: "{" + entry("w", shape: #"["1"]"#, offsets: "[0,4]") + "}", data: four,
            .invalidHeader, ["non-negative integers"]),
        .init(
            "three data offsets", header: "{" + entry("w", shape: "[1]", offsets: "[0,4,4]") + "}", data: four,
            .invalidHeader, ["[begin, end]", "found 3"]),
        .init(
            "repeated key in an entry",
            header: #"{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four,
            .invalidHeader, ["\"dtype\" more than once"]),
        .init("metadata not an object", header: #"{"__metadata__":"x"}"#, .invalidHeader, ["found a string"]),
        .init(
            "metadata value not a string", header: #"{"__metadata__":{"epoch":3}}"#, .invalidHeader,
            ["'epoch'", "found an integer"]),

        // Names.
        .init(
            "empty name", header: "{" + entry("", shape: "[1]", offsets: "[0,4]") + "}", data: four, .invalidName,
            ["empty name"]),
        .init(
            "duplicate name",
            header: "{" + entry("w", shape: "[1]", offsets: "[0,4]") + "," + entry("w", shape: "[1]", offsets: "[4,8]")
                + "}",
            data: four + four, .duplicateName, ["'w'"]),
        .init(
            "duplicate metadata", header: #"{"__metadata__":{},"__metadata__":{}}"#, .duplicateName,
            ["'__metadata__'"]),

        // Dtypes.
        .init(
            "F16", header: "{" + entry("layer.w", shape: "[2]", offsets: "[0,4]", dtype: "F16") + "}", data: four,
            .unsupportedDType, ["'layer.w'", "F16", "only F32 is supported"]),
        .init(
            "BF16", header: "{" + entry("emb", shape: "[2]", offsets: "[0,4]", dtype: "BF16") + "}", data: four,
            .unsupportedDType, ["'emb'", "BF16", "only F32 is supported"]),
        .init(
            "I64", header: "{" + entry("steps", shape: "[]", offsets: "[0,8]", dtype: "I64") + "}",
            data: four + four, .unsupportedDType, ["'steps'", "I64", "only F32 is supported"]),

        // Shapes and offsets.
        .init(
            "shape product overflow",
            header: "{" + entry("w", shape: "[4294967296,4294967296]", offsets: "[0,4]") + "}", data: four,
            .shapeOverflow, ["'w'", "overflows"]),
        .init(
            "overflow hidden behind a zero dimension",
            header: "{" + entry("w", shape: "[0,4294967296,4294967296]", offsets: "[0,0]") + "}", .shapeOverflow),
        .init(
            "byte count overflow",
            header: "{" + entry("w", shape: "[4611686018427387904]", offsets: "[0,4]") + "}", data: four,
            .shapeOverflow, ["bytes"]),
        .init(
            "dimension above Int.max", header: "{" + entry("w", shape: "[9223372036854775808]", offsets: "[0,4]") + "}",
            data: four, .shapeOverflow, ["9223372036854775808"]),
        .init(
            "offset above Int.max",
            header: "{" + entry("w", shape: "[1]", offsets: "[0,9223372036854775808]") + "}", data: four,
            .offsetsOutOfRange),
        .init(
            "reversed offsets", header: "{" + entry("w", shape: "[1]", offsets: "[4,0]") + "}", data: four,
            .reversedOffsets, ["'w'", "[4, 0]"]),
        .init(
            "offsets past the data", header: "{" + entry("w", shape: "[2]", offsets: "[0,8]") + "}", data: four,
            .offsetsOutOfRange, ["'w'", "[0, 8]", "4-byte data region"]),
        .init(
            "range smaller than the shape", header: "{" + entry("w", shape: "[2]", offsets: "[0,4]") + "}", data: four,
            .sizeMismatch, ["'w'", "needs 8 bytes", "span 4"]),
        .init(
            "range larger than the shape", header: "{" + entry("w", shape: "[]", offsets: "[0,8]") + "}",
            data: four + four, .sizeMismatch, ["needs 4 bytes", "span 8"]),

        // Layout of the data region.
        .init(
            "overlapping tensors",
            header: "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "," + entry("b", shape: "[2]", offsets: "[4,12]")
                + "}",
            data: four + four + four, .overlappingTensors, ["'b'", "'a'", "ends at byte 8"]),
        .init(
            "empty tensor inside another",
            header: "{" + entry("a", shape: "[2]", offsets: "[0,8]") + "," + entry("e", shape: "[0]", offsets: "[4,4]")
                + "}",
            data: four + four, .overlappingTensors, ["'e'"]),
        .init(
            "hole between tensors",
            header: "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "," + entry("b", shape: "[1]", offsets: "[8,12]")
                + "}",
            data: four + four + four, .uncoveredBytes, ["4..<8", "'b'"]),
        .init(
            "hole at the start", header: "{" + entry("a", shape: "[1]", offsets: "[4,8]") + "}", data: four + four,
            .uncoveredBytes, ["0..<4"]),
        .init(
            "trailing bytes", header: "{" + entry("a", shape: "[1]", offsets: "[0,4]") + "}", data: four + four,
            .uncoveredBytes, ["8 bytes", "first 4"]),
        .init("data without tensors", header: "{}", data: four, .uncoveredBytes, ["4 bytes", "first 0"]),
    ]
}
