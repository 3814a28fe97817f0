import Testing

@testable import FedData

@Suite struct NormalizationTests {
    @Test func unitRangeDividesBy255() {
        let n = Normalization.unitRange
        #expect(n.value(forByte: 0) == 0)
        #expect(n.value(forByte: 51) == 0.2)
        #expect(n.value(forByte: 255) == 1)
        #expect(n.value(forByte: 1) == Float(1) / 255)
    }

    @Test func standardizeSubtractsMeanThenDividesByStd() {
        let n = Normalization.standardize(mean: 0.5, std: 0.5)
        #expect(n.value(forByte: 0) == -1)
        #expect(n.value(forByte: 255) == 1)
        #expect(n.value(forByte: 51) == (Float(0.2) - 0.5) / 0.5)
    }

    @Test func fashionMNISTPresetUsesDatasetStatistics() {
        #expect(Normalization.fashionMNIST == .standardize(mean: 0.2860, std: 0.3530))
        #expect(Normalization.fashionMNIST.value(forByte: 0) == -Float(0.2860) / Float(0.3530))
    }

    @Test func decodeMatchesPerByteValues() {
        let bytes: [UInt8] = [0, 1, 127, 128, 254, 255]
        let n = Normalization.fashionMNIST
        var out = [Float](repeating: .nan, count: bytes.count)
        bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { n.decode(src, into: $0) }
        }
        #expect(out == bytes.map { n.value(forByte: $0) })
    }
}
