import FedTestSupport
import Foundation
import Testing

/// The shared test helpers themselves: a helper that cannot fail would make every test using it vacuous.
@Suite struct TestSupportTests {
    @Test func closenessScalesByTheLargerOfOneAndTheExpectedMagnitude() {
        #expect(Closeness([1.0, 2.0], [1.0, 2.0]).worst == 0)
        #expect(Closeness([0.001], [0]).isWithin(1e-3))
        #expect(!Closeness([0.0011], [0]).isWithin(1e-3))
        // |expected| up to 1000: 0.5 off is 5e-4 relative.
        #expect(Closeness([1000.5, 3], [1000, 3]).isWithin(5e-4))
        #expect(!Closeness([1000.5, 3], [1000, 3]).isWithin(4e-4))
    }

    @Test func closenessRejectsNaNAndDifferentCounts() {
        #expect(!Closeness([.nan], [0]).isWithin(1))
        #expect(!Closeness([0, .nan, 0], [0, 0, 0]).isWithin(1))
        #expect(!Closeness([0, 0], [0, .nan]).isWithin(1))
        #expect(!Closeness([1, 2], [1]).isWithin(1e9))
    }

    @Test func temporaryDirectoryIsRemovedWithEverythingInIt() throws {
        var path = ""
        do {
            let directory = try TemporaryDirectory(prefix: "support")
            path = directory.path
            let file = try directory.write("a.bin", [1, 2, 3])
            #expect(FileManager.default.contents(atPath: file) == Data([1, 2, 3]))
            #expect(directory.file("a.bin") == file)
        }
        #expect(!path.isEmpty && !FileManager.default.fileExists(atPath: path))
    }
}
