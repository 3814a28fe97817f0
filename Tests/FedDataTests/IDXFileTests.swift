import FedTensor
import FedTestSupport
import Testing

@testable import FedData

@Suite struct IDXFileTests {
    let images = IDXTestEncoder.encode(dims: [2, 2, 3], payload: [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255])

    @Test func parsesRawFile() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("images-idx3-ubyte", images)
        let file = try IDXFile(contentsOf: path)
        #expect(file.dims == [2, 2, 3])
        #expect(Array(file.payload) == [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255])
        #expect(file.path == path)
    }

    @Test func parsesGzippedFile() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("images-idx3-ubyte.gz", GzipTestEncoder.gzip(images))
        let file = try IDXFile(contentsOf: path)
        #expect(file.dims == [2, 2, 3])
        #expect(Array(file.payload) == [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255])
    }

    @Test func readsRawDataEvenWhenNamedGz() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("labels-idx1-ubyte.gz", IDXTestEncoder.encode(dims: [3], payload: [7, 8, 9]))
        let file = try IDXFile(contentsOf: path)
        #expect(file.dims == [3])
        #expect(Array(file.payload) == [7, 8, 9])
    }

    @Test func inflatesConcatenatedGzipMembers() throws {
        let dir = try TemporaryDirectory()
        let gz = GzipTestEncoder.gzip(Array(images[..<10])) + GzipTestEncoder.gzip(Array(images[10...]))
        let file = try IDXFile(contentsOf: dir.write("two-members.gz", gz))
        #expect(file.dims == [2, 2, 3])
        #expect(Array(file.payload) == Array(images[16...]))
    }

    @Test func inflatesLargeIncompressibleGzip() throws {
        // Larger than the initial output guess would be if ISIZE were ignored, and incompressible
        // enough that deflate's output is bigger than its input.
        var rng = SeededRNG(seed: 3)
        let payload = (0..<300_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let dir = try TemporaryDirectory()
        let idx = IDXTestEncoder.encode(dims: [300_000], payload: payload)
        let path = try dir.write("big.gz", GzipTestEncoder.gzip(idx))
        let file = try IDXFile(contentsOf: path)
        #expect(file.dims == [300_000])
        #expect(Array(file.payload) == payload)
    }

    @Test func missingFileIsReported() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/nope-idx1-ubyte.gz"
        let error = try #require(throws: DataError.self) { try IDXFile(contentsOf: path) }
        #expect(error.code == .missingFile)
        #expect(error.path == path)
        #expect(error.message.contains(path))
    }

    @Test func directoryIsUnreadable() throws {
        let dir = try TemporaryDirectory()
        let error = try #require(throws: DataError.self) { try IDXFile(contentsOf: dir.path) }
        #expect(error.code == .unreadableFile)
        #expect(error.message.contains(dir.path))
    }

    @Test func wrongMagicIsRejected() throws {
        try expectError(.badMagic, for: [0x01, 0x00, 0x08, 0x01, 0, 0, 0, 1, 5], mentioning: ["0x01 0x00"])
    }

    @Test func unsupportedTypeByteIsRejected() throws {
        let bytes = IDXTestEncoder.encode(type: 0x0D, dims: [1], payload: [0, 0, 0, 0])
        try expectError(.unsupportedType, for: bytes, mentioning: ["0x0d", "32-bit float", "0x08"])
    }

    @Test func zeroDimensionsAreRejected() throws {
        try expectError(.badHeader, for: [0, 0, 8, 0], mentioning: ["0 dimensions"])
    }

    @Test func truncatedHeaderIsRejected() throws {
        try expectError(.truncated, for: [0, 0, 8, 3, 0, 0, 0, 2, 0, 0], mentioning: ["16", "found only 10"])
    }

    @Test func truncatedPayloadIsRejected() throws {
        let bytes = IDXTestEncoder.encode(dims: [2, 3], payload: [1, 2, 3, 4])
        try expectError(.truncated, for: bytes, mentioning: ["need 6 payload bytes, found 4", "2 missing"])
    }

    @Test func extraBytesAreRejected() throws {
        let bytes = IDXTestEncoder.encode(dims: [2, 3], payload: [1, 2, 3, 4, 5, 6, 7])
        try expectError(.trailingData, for: bytes, mentioning: ["need 6 payload bytes, found 7", "1 extra"])
    }

    @Test func overflowingDimensionsAreRejected() throws {
        let bytes = IDXTestEncoder.encode(dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [1])
        try expectError(.badHeader, for: bytes, mentioning: ["overflows"])
    }

    @Test func corruptGzipIsRejected() throws {
        var gz = GzipTestEncoder.gzip(images)
        for i in 10..<gz.count - 8 { gz[i] ^= 0xA5 }
        try expectError(.corruptGzip, for: gz, named: "corrupt.gz", mentioning: ["corrupt"])
    }

    @Test func truncatedGzipIsRejected() throws {
        let gz = GzipTestEncoder.gzip(images)
        try expectError(.corruptGzip, for: Array(gz.prefix(gz.count - 6)), named: "cut.gz", mentioning: ["truncated"])
    }

    @Test func garbageAfterGzipIsRejected() throws {
        let gz = GzipTestEncoder.gzip(images) + [0x42, 0x42]
        try expectError(.corruptGzip, for: gz, named: "tail.gz", mentioning: ["2 bytes of non-gzip data"])
    }

    private func expectError(
        _ code: DataError.Code, for bytes: [UInt8], named name: String = "bad-idx-ubyte",
        mentioning fragments: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write(name, bytes)
        let error = try #require(throws: DataError.self, sourceLocation: sourceLocation) {
            try IDXFile(contentsOf: path)
        }
        #expect(error.code == code, sourceLocation: sourceLocation)
        #expect(error.path == path, sourceLocation: sourceLocation)
        #expect(error.message.contains(path), "\(error.message)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        }
    }
}
