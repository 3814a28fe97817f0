import FedTestSupport
import Foundation
import Testing

@testable import FedTensor

@Suite struct AtomicFileTests {
    /// A fresh empty directory, removed after `body`.
    func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
        let directory = try TemporaryDirectory(prefix: "fedtensor")
        try body(directory.path)
    }

    func entries(of directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    @Test func writeThenReadBackIsExactAndLeavesOnlyTheDestination() throws {
        try withTemporaryDirectory { directory throws in
            // Larger than the 1 MiB read chunk, so reading loops.
            var rng = SeededRNG(seed: 1)
            let bytes = (0..<(3 << 20) + 17).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let path = directory + "/model.bin"
            try AtomicFile.write(bytes, to: path)
            #expect(try AtomicFile.read(path) == bytes)
            #expect(try entries(of: directory) == ["model.bin"])
        }
    }

    @Test func emptyFileRoundTrips() throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/empty"
            try AtomicFile.write([UInt8](), to: path)
            #expect(try AtomicFile.read(path) == [])
        }
    }

    @Test func nonContiguousCollectionIsWritten() throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/sevens"
            try AtomicFile.write(repeatElement(UInt8(7), count: 5), to: path)
            #expect(try AtomicFile.read(path) == [7, 7, 7, 7, 7])
        }
    }

    @Test func rawBufferIsWritten() throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/raw"
            try [UInt8]([1, 2, 3]).withUnsafeBytes { try AtomicFile.write($0, to: path) }
            #expect(try AtomicFile.read(path) == [1, 2, 3])
        }
    }

    @Test func overwriteReplacesTheWholeOldFile() throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/checkpoint"
            try AtomicFile.write([UInt8](repeating: 0xAA, count: 1000), to: path)
            try AtomicFile.write([1, 2, 3], to: path)
            #expect(try AtomicFile.read(path) == [1, 2, 3])
            #expect(try entries(of: directory) == ["checkpoint"])
        }
    }

    @Test func writeIntoMissingDirectoryThrowsAndLeavesNothing() throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/missing/model.bin"
            let error = #expect(throws: FileError.self) { try AtomicFile.write([1, 2, 3], to: path) }
            #expect(error?.code == ENOENT)
            #expect(error?.message.contains(directory + "/missing/") == true)
            #expect(error?.message.contains("No such file or directory") == true)
            #expect(try entries(of: directory).isEmpty)
        }
    }

    @Test func failedRenameRemovesTheTemporaryFile() throws {
        try withTemporaryDirectory { directory throws in
            // The temporary file is written, then renaming it over a directory fails.
            let path = directory + "/target"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            let error = #expect(throws: FileError.self) { try AtomicFile.write([1, 2, 3], to: path) }
            #expect(error?.code == EISDIR)
            #expect(error?.path == path)
            #expect(try entries(of: directory) == ["target"])
            #expect(try entries(of: path).isEmpty)
        }
    }

    @Test func pathEndingInSlashIsRejected() throws {
        try withTemporaryDirectory { directory throws in
            let error = #expect(throws: FileError.self) { try AtomicFile.write([1], to: directory + "/") }
            #expect(error?.code == EISDIR)
            #expect(try entries(of: directory).isEmpty)
        }
    }

    @Test func readingMissingFileThrowsNamingThePath() throws {
        try withTemporaryDirectory { directory throws in
            let path = directory + "/absent.safetensors"
            let error = #expect(throws: FileError.self) { try AtomicFile.read(path) }
            #expect(error?.code == ENOENT)
            #expect(error?.path == path)
            #expect(error?.description.contains("'\(path)'") == true)
            #expect(error?.description.contains("No such file or directory") == true)
        }
    }

    @Test func readingADirectoryThrows() throws {
        try withTemporaryDirectory { directory throws in
            let error = #expect(throws: FileError.self) { try AtomicFile.read(directory) }
            #expect(error?.code == EISDIR)
        }
    }
}
