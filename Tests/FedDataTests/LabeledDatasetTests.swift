import FedTensor
import Testing

@testable import FedData

@Suite struct LabeledDatasetTests {
    /// Five 1×1×2 samples; sample i holds [10 i, 10 i + 1] and label i % 3.
    let dataset = try! LabeledDataset(
        images: Tensor(shape: [5, 1, 1, 2], scalars: (0..<5).flatMap { [Float(10 * $0), Float(10 * $0 + 1)] }),
        labels: [0, 1, 2, 0, 1], classCount: 3)

    @Test func describesItsShape() {
        #expect(dataset.count == 5)
        #expect(dataset.sampleShape == [1, 1, 2])
        #expect(dataset.sampleSize == 2)
        #expect(dataset.classCounts() == [2, 2, 1])
    }

    @Test func copyBatchByRange() {
        var x = Tensor(shape: [0])
        var y: [Int32] = [99]
        dataset.copyBatch(start: 1, count: 3, images: &x, labels: &y)
        #expect(x.shape == [3, 1, 1, 2])
        #expect(x.scalars == [10, 11, 20, 21, 30, 31])
        #expect(y == [1, 2, 0])
    }

    @Test func copyBatchByIndices() {
        var x = Tensor(shape: [0])
        var y: [Int32] = []
        dataset.copyBatch(indices: [4, 0, 4][...], images: &x, labels: &y)
        #expect(x.shape == [3, 1, 1, 2])
        #expect(x.scalars == [40, 41, 0, 1, 40, 41])
        #expect(y == [1, 0, 1])
    }

    @Test func copyBatchReusesUnsharedBuffers() {
        var x = Tensor(shape: [0])
        var y: [Int32] = []
        dataset.copyBatch(start: 0, count: 3, images: &x, labels: &y)
        let imageBase = x.withUnsafeBufferPointer { $0.baseAddress }
        let labelBase = y.withUnsafeBufferPointer { $0.baseAddress }
        dataset.copyBatch(indices: [2, 3][...], images: &x, labels: &y)
        #expect(x.withUnsafeBufferPointer { $0.baseAddress } == imageBase)
        #expect(y.withUnsafeBufferPointer { $0.baseAddress } == labelBase)
        #expect(x.scalars == [20, 21, 30, 31])
    }

    @Test func copyBatchDoesNotWriteIntoSharedStorage() {
        var x = dataset.images
        var y: [Int32] = []
        dataset.copyBatch(start: 3, count: 2, images: &x, labels: &y)
        #expect(x.scalars == [30, 31, 40, 41])
        #expect(dataset.images.scalars == [0, 1, 10, 11, 20, 21, 30, 31, 40, 41])
    }

    @Test func subsetKeepsSelectedSamplesInOrder() {
        let s = dataset.subset(indices: [3, 1])
        #expect(s.count == 2)
        #expect(s.images.shape == [2, 1, 1, 2])
        #expect(s.images.scalars == [30, 31, 10, 11])
        #expect(s.labels == [0, 1])
        #expect(s.classCount == 3)
    }

    @Test func initRejectsInconsistentInputs() throws {
        let images = Tensor(shape: [2, 1, 1, 1])
        let counts = try #require(throws: DataError.self) {
            try LabeledDataset(images: images, labels: [0], classCount: 2)
        }
        #expect(counts.code == .countMismatch)
        let range = try #require(throws: DataError.self) {
            try LabeledDataset(images: images, labels: [0, 2], classCount: 2)
        }
        #expect(range.code == .labelOutOfRange)
        #expect(range.message.contains("label 2 at index 1"))
        let rank = try #require(throws: DataError.self) {
            try LabeledDataset(images: Tensor(shape: [2, 1]), labels: [0, 1], classCount: 2)
        }
        #expect(rank.code == .shapeMismatch)
    }
}
