import FedTensor
import Testing

@testable import FedData

@Suite struct BatchLoaderTests {
    /// Ten 1×1×1 samples whose single pixel equals their index; label = index % 4.
    let dataset = try! LabeledDataset(
        images: Tensor(shape: [10, 1, 1, 1], scalars: (0..<10).map(Float.init)),
        labels: (0..<10).map { Int32($0 % 4) }, classCount: 4)

    /// The sample indices of one epoch, batch by batch (read back from the pixel values).
    func epochBatches(_ loader: inout BatchLoader, epoch: Int) -> [[Int]] {
        loader.reset(epoch: epoch)
        var x = Tensor(shape: [0])
        var y: [Int32] = []
        var batches: [[Int]] = []
        while loader.next(images: &x, labels: &y) > 0 {
            let indices = x.scalars.map { Int($0) }
            #expect(y == indices.map { Int32($0 % 4) })
            batches.append(indices)
        }
        return batches
    }

    @Test func unshuffledVisitsInOrder() {
        var loader = BatchLoader(dataset: dataset, batchSize: 4, shuffle: false, seed: 0)
        #expect(loader.batchesPerEpoch == 3)
        #expect(epochBatches(&loader, epoch: 0) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    }

    @Test func shuffledCoversEveryIndexOncePerEpoch() {
        var loader = BatchLoader(dataset: dataset, batchSize: 3, shuffle: true, seed: 7)
        for epoch in 0..<5 {
            let batches = epochBatches(&loader, epoch: epoch)
            #expect(batches.map(\.count) == [3, 3, 3, 1])
            #expect(batches.joined().sorted() == Array(0..<10))
        }
    }

    @Test func shuffleIsDeterministicPerSeedAndEpoch() {
        var a = BatchLoader(dataset: dataset, batchSize: 3, shuffle: true, seed: 7)
        var b = BatchLoader(dataset: dataset, batchSize: 3, shuffle: true, seed: 7)
        var c = BatchLoader(dataset: dataset, batchSize: 3, shuffle: true, seed: 8)
        let a1 = epochBatches(&a, epoch: 1)
        _ = epochBatches(&b, epoch: 4)  // visiting epochs out of order changes nothing
        #expect(epochBatches(&b, epoch: 1) == a1)
        #expect(epochBatches(&a, epoch: 2) != a1)
        #expect(epochBatches(&c, epoch: 1) != a1)
    }

    @Test func shuffleMatchesSeededRNGStream() {
        var loader = BatchLoader(dataset: dataset, batchSize: 10, shuffle: true, seed: 11)
        var expected = Array(0..<10)
        var rng = SeededRNG(seed: 11, stream: "shuffle/epoch3")
        rng.shuffle(&expected)
        #expect(epochBatches(&loader, epoch: 3) == [expected])
    }

    @Test func dropLastSkipsTheShortBatch() {
        var loader = BatchLoader(dataset: dataset, batchSize: 4, shuffle: false, seed: 0, dropLast: true)
        #expect(loader.batchesPerEpoch == 2)
        #expect(epochBatches(&loader, epoch: 0) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        var exact = BatchLoader(dataset: dataset, batchSize: 5, shuffle: true, seed: 0, dropLast: true)
        #expect(exact.batchesPerEpoch == 2)
        #expect(epochBatches(&exact, epoch: 0).map(\.count) == [5, 5])
    }

    @Test func nextReturnsZeroAfterTheEpochUntilReset() {
        var loader = BatchLoader(dataset: dataset, batchSize: 10, shuffle: false, seed: 0)
        var x = Tensor(shape: [0])
        var y: [Int32] = []
        #expect(loader.next(images: &x, labels: &y) == 10)
        #expect(loader.next(images: &x, labels: &y) == 0)
        #expect(loader.next(images: &x, labels: &y) == 0)
        loader.reset(epoch: 1)
        #expect(loader.epoch == 1)
        #expect(loader.next(images: &x, labels: &y) == 10)
    }

    @Test func reusesTheCallersBuffers() {
        for shuffle in [false, true] {
            var loader = BatchLoader(dataset: dataset, batchSize: 3, shuffle: shuffle, seed: 1, dropLast: true)
            var x = Tensor(shape: [0])
            var y: [Int32] = []
            #expect(loader.next(images: &x, labels: &y) == 3)
            let imageBase = x.withUnsafeBufferPointer { $0.baseAddress }
            let labelBase = y.withUnsafeBufferPointer { $0.baseAddress }
            for epoch in 0..<3 {
                loader.reset(epoch: epoch)
                while loader.next(images: &x, labels: &y) > 0 {
                    #expect(x.withUnsafeBufferPointer { $0.baseAddress } == imageBase)
                    #expect(y.withUnsafeBufferPointer { $0.baseAddress } == labelBase)
                }
            }
        }
    }
}
