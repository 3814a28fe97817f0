import FedTensor
import FedTestSupport
import Foundation
import Testing

@testable import FedData

@Suite struct FashionMNISTTests {
    /// `n` 28×28 images; image i is filled with byte `i`.
    func imageFile(_ n: Int, side: UInt32 = 28) -> [UInt8] {
        IDXTestEncoder.encode(
            dims: [UInt32(n), side, side], payload: (0..<n).flatMap { [UInt8](repeating: UInt8($0), count: 784) })
    }

    func labelFile(_ labels: [UInt8]) -> [UInt8] {
        IDXTestEncoder.encode(dims: [UInt32(labels.count)], payload: labels)
    }

    /// A fake dataset directory: 3 training and 2 test samples, images and labels gzipped except
    /// the uncompressed test labels.
    func fakeDirectory() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try dir.write("train-images-idx3-ubyte.gz", GzipTestEncoder.gzip(imageFile(3)))
        try dir.write("train-labels-idx1-ubyte.gz", GzipTestEncoder.gzip(labelFile([9, 0, 4])))
        try dir.write("t10k-images-idx3-ubyte.gz", GzipTestEncoder.gzip(imageFile(2)))
        try dir.write("t10k-labels-idx1-ubyte", labelFile([1, 2]))
        return dir
    }

    @Test func loadsFakeDirectory() throws {
        let dir = try fakeDirectory()
        let (train, test) = try FashionMNIST.load(directory: dir.path)
        #expect(train.images.shape == [3, 1, 28, 28])
        #expect(train.labels == [9, 0, 4])
        #expect(train.classCount == 10)
        #expect(train.images[0] == 0)
        #expect(train.images[784] == Float(1) / 255)
        #expect(train.images[3 * 784 - 1] == Float(2) / 255)
        #expect(test.images.shape == [2, 1, 28, 28])
        #expect(test.labels == [1, 2])
    }

    @Test func appliesNormalization() throws {
        let dir = try fakeDirectory()
        let n = Normalization.standardize(mean: 0.5, std: 0.25)
        let (train, _) = try FashionMNIST.load(directory: dir.path, normalization: n)
        #expect(train.images[0] == -2)
        #expect(train.images[2 * 784] == (Float(2) / 255 - 0.5) / 0.25)
    }

    @Test func missingFileExplainsHowToInstall() throws {
        let dir = try fakeDirectory()
        try FileManager.default.removeItem(atPath: dir.path + "/t10k-images-idx3-ubyte.gz")
        let error = try #require(throws: DataError.self) { try FashionMNIST.load(directory: dir.path) }
        let path = dir.path + "/t10k-images-idx3-ubyte.gz"
        #expect(error.code == .missingFile)
        #expect(error.path == path)
        #expect(error.message.contains(path))
        #expect(error.message.contains("apt-get install dataset-fashion-mnist"))
        #expect(error.message.contains("FEDSWIFT_FMNIST_DIR"))
    }

    @Test func mismatchedCountsNameBothFiles() throws {
        let dir = try TemporaryDirectory()
        let images = try dir.write("imgs.gz", GzipTestEncoder.gzip(imageFile(3)))
        let labels = try dir.write("lbls", labelFile([1, 2]))
        let error = try #require(throws: DataError.self) {
            try FashionMNIST.loadSplit(imagesPath: images, labelsPath: labels)
        }
        #expect(error.code == .countMismatch)
        #expect(error.message.contains(images))
        #expect(error.message.contains(labels))
        #expect(error.message.contains("3 images"))
        #expect(error.message.contains("2 labels"))
    }

    @Test func labelOutOfRangeIsRejected() throws {
        let dir = try TemporaryDirectory()
        let images = try dir.write("imgs", imageFile(3))
        let labels = try dir.write("lbls", labelFile([1, 10, 2]))
        let error = try #require(throws: DataError.self) {
            try FashionMNIST.loadSplit(imagesPath: images, labelsPath: labels)
        }
        #expect(error.code == .labelOutOfRange)
        #expect(error.path == labels)
        #expect(error.message.contains(labels))
        #expect(error.message.contains("label 10 at index 1"))
    }

    @Test func wrongImageSizeIsRejected() throws {
        let dir = try TemporaryDirectory()
        let images = try dir.write(
            "imgs", IDXTestEncoder.encode(dims: [1, 27, 28], payload: [UInt8](repeating: 0, count: 27 * 28)))
        let labels = try dir.write("lbls", labelFile([1]))
        let error = try #require(throws: DataError.self) {
            try FashionMNIST.loadSplit(imagesPath: images, labelsPath: labels)
        }
        #expect(error.code == .shapeMismatch)
        #expect(error.message.contains(images))
        #expect(error.message.contains("[1, 27, 28]"))
    }

    @Test func explicitDirectoryWinsOverDefault() {
        #expect(FashionMNIST.resolveDirectory("/tmp/x") == "/tmp/x")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory)))
    func realFilesMatchReferenceValues() throws {
        let (train, test) = try FashionMNIST.load(directory: FashionMNIST.defaultDirectory)
        #expect(train.count == 60_000)
        #expect(test.count == 10_000)
        #expect(train.images.shape == [60_000, 1, 28, 28])
        #expect(test.images.shape == [10_000, 1, 28, 28])
        #expect(train.labels.first == 9)
        #expect(test.labels.first == 9)
        #expect(train.classCounts() == [Int](repeating: 6000, count: 10))
        #expect(test.classCounts() == [Int](repeating: 1000, count: 10))

        // Reference values from Python: sum(gzip.open(...).read()[16:16 + 784]) and the float64 sum
        // of numpy's float32 `pixels / 255`.
        let first = train.images.withUnsafeBufferPointer { Array($0.prefix(784)) }
        #expect(first.map { Int(($0 * 255).rounded()) }.reduce(0, +) == 76_247)
        let unitSum = first.reduce(0.0) { $0 + Double($1) }
        #expect(abs(unitSum - 299.007_847_206_201_4) < 1e-9)
        let testFirst = test.images.withUnsafeBufferPointer { Array($0.prefix(784)) }
        #expect(testFirst.map { Int(($0 * 255).rounded()) }.reduce(0, +) == 33_456)

        let raw = try IDXFile(contentsOf: FashionMNIST.defaultDirectory + "/train-images-idx3-ubyte.gz")
        #expect(raw.dims == [60_000, 28, 28])
        #expect(raw.payload.prefix(784).reduce(0) { $0 + Int($1) } == 76_247)
    }
}
