import FedTensor
import Testing

@testable import FedData

@Suite struct SyntheticDatasetTests {
    @Test func sameSeedSameData() {
        let a = SyntheticDataset.make(count: 40, classes: 4, channels: 2, height: 3, width: 5, seed: 9, noise: 0.3)
        let b = SyntheticDataset.make(count: 40, classes: 4, channels: 2, height: 3, width: 5, seed: 9, noise: 0.3)
        let c = SyntheticDataset.make(count: 40, classes: 4, channels: 2, height: 3, width: 5, seed: 10, noise: 0.3)
        #expect(a.images.shape == [40, 2, 3, 5])
        #expect(a.images.scalars == b.images.scalars)
        #expect(a.labels == b.labels)
        #expect(a.images.scalars != c.images.scalars)
    }

    @Test func classesAreBalanced() {
        let d = SyntheticDataset.make(count: 42, classes: 4, height: 2, width: 2, seed: 1)
        #expect(d.classCount == 4)
        #expect(d.classCounts() == [11, 11, 10, 10])
    }

    @Test func withoutNoiseSamplesEqualTheirClassPrototype() {
        let d = SyntheticDataset.make(count: 20, classes: 3, height: 2, width: 3, seed: 5, noise: 0)
        let pixels = d.images.scalars
        func sample(_ i: Int) -> ArraySlice<Float> { pixels[(i * 6)..<(i * 6 + 6)] }
        for i in 0..<20 {
            let first = d.labels.firstIndex(of: d.labels[i])!
            #expect(sample(i) == sample(first))
        }
        let prototypes = (0..<3).map { c in sample(d.labels.firstIndex(of: Int32(c))!) }
        #expect(prototypes[0] != prototypes[1] && prototypes[1] != prototypes[2])
    }

    @Test func noiseHasTheRequestedScale() {
        let d = SyntheticDataset.make(count: 2000, classes: 1, height: 1, width: 1, seed: 2, noise: 0.5)
        let values = d.images.scalars.map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        #expect(abs(variance.squareRoot() - 0.5) < 0.05)
    }
}
