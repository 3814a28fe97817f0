import Testing

@testable import FedTensor

@Suite struct TensorTests {
    @Test func copyOnWriteLeavesOtherCopyUntouched() {
        var a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let b = a
        a[0] = 10
        #expect(a.scalars == [10, 2, 3, 4])
        #expect(b.scalars == [1, 2, 3, 4])
    }
}
