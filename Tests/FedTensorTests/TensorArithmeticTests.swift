import Testing

@testable import FedTensor

@Suite struct TensorArithmeticTests {
    let a = Tensor(shape: [2, 3], scalars: [1, -2, 3, 4, 5, -6])
    let b = Tensor(shape: [2, 3], scalars: [0.5, 2, -1, 0, 1, 2])

    @Test func elementwiseOperators() {
        #expect((a + b).scalars == [1.5, 0, 2, 4, 6, -4])
        #expect((a - b).scalars == [0.5, -4, 4, 4, 4, -8])
        #expect((a * b).scalars == [0.5, -4, -3, 0, 5, -12])
        #expect((2 * a).scalars == [2, -4, 6, 8, 10, -12])
        #expect((-a).scalars == [-1, 2, -3, -4, -5, 6])
        var c = a
        c.addScaled(b, alpha: -2)
        #expect(c.scalars == [0, -6, 5, 4, 3, -10])
        #expect(a.scalars == [1, -2, 3, 4, 5, -6])
    }

    @Test func reductions() {
        #expect(a.sum() == 5)
        #expect(abs(a.mean() - 5.0 / 6) < 1e-7)
        #expect(a.max() == 5)
        #expect(a.min() == -6)
        #expect(a.dot(b) == -13.5)
        #expect(Tensor(shape: [2], scalars: [3, 4]).l2Norm() == 5)
        #expect(a.argmaxRows() == [2, 1])
        #expect(Tensor(shape: [1, 3], scalars: [7, 7, 1]).argmaxRows() == [0])
        #expect(Tensor(shape: [0]).max() == nil)
        #expect(Tensor(shape: [3], scalars: [1, .nan, 2]).max()!.isNaN)
    }

    @Test func finitenessAndApproximateEquality() {
        #expect(a.isFinite)
        #expect(!Tensor(shape: [2], scalars: [1, .infinity]).isFinite)
        #expect(!Tensor(shape: [2], scalars: [.nan, 1]).isFinite)
        #expect(a.isApproximatelyEqual(to: a + Tensor(shape: [2, 3], repeating: 1e-7)))
        #expect(!a.isApproximatelyEqual(to: a + Tensor(shape: [2, 3], repeating: 1e-3)))
        #expect(!a.isApproximatelyEqual(to: a.reshaped([3, 2])))
    }

    @Test func seededRandomTensorsAreReproducibleAndHaveTheRightMoments() {
        var r1 = SeededRNG(seed: 42, stream: "t")
        var r2 = SeededRNG(seed: 42, stream: "t")
        let x = Tensor.normal([20_000], mean: 1, std: 2, rng: &r1)
        #expect(x == Tensor.normal([20_000], mean: 1, std: 2, rng: &r2))
        #expect(abs(x.mean() - 1) < 0.05)
        let centered = x - Tensor(shape: [20_000], repeating: x.mean())
        #expect(abs(centered.l2Norm() / Float(20_000).squareRoot() - 2) < 0.05)
        var r3 = SeededRNG(seed: 42, stream: "u")
        let u = Tensor.uniform([20_000], low: -1, high: 3, rng: &r3)
        #expect(u.min()! >= -1 && u.max()! < 3)
        #expect(abs(u.mean() - 1) < 0.03)
    }

    @Test func streamsWithDifferentNamesDiffer() {
        var a = SeededRNG(seed: 0, stream: "init/conv1.weight")
        var b = SeededRNG(seed: 0, stream: "init/conv1.bias")
        #expect((0..<4).map { _ in a.next() } != (0..<4).map { _ in b.next() })
    }
}

@Suite struct ComputeThreadsTests {
    @Test func overrideIsPerThreadAndNestedRegionsRunSerially() {
        let global = ComputeThreads.count
        ComputeThreads.withThreads(3) {
            #expect(ComputeThreads.count == 3)
            var seen = [Int](repeating: 0, count: 3)
            seen.withUnsafeMutableBufferPointer { buf in
                nonisolated(unsafe) let out = buf
                ComputeThreads.forEachRange(3) { worker, range in
                    // Inside a worker the budget is 1, so this nested call runs on the worker itself.
                    ComputeThreads.forEachRange(4) { inner, _ in if inner == 0 { out[worker] = ComputeThreads.count } }
                    #expect(range.count == 1)
                }
            }
            #expect(seen == [1, 1, 1])
        }
        #expect(ComputeThreads.count == global)
    }

    /// Under oneDNN the loop runs on the OpenMP team, elsewhere on Dispatch: either way every
    /// index is visited once, by the worker `splitRange` assigns it to, with more workers than
    /// cores too.
    @Test(arguments: ComputeBackend.available, [2, 3, 8])
    func forEachRangeVisitsEveryIndexOnceOnEveryBackend(backend: ComputeBackend, threads: Int) {
        let total = 37
        var owner = [Int](repeating: -1, count: total)
        var visits = [Int](repeating: 0, count: total)
        ComputeBackend.with(backend) {
            ComputeThreads.withThreads(threads) {
                owner.withUnsafeMutableBufferPointer { o in
                    visits.withUnsafeMutableBufferPointer { v in
                        nonisolated(unsafe) let (ownerOut, visitsOut) = (o, v)
                        ComputeThreads.forEachRange(total) { worker, range in
                            #expect(ComputeThreads.count == 1)
                            #expect(ComputeBackend.current == backend)
                            for i in range {
                                ownerOut[i] = worker
                                visitsOut[i] += 1
                            }
                        }
                    }
                }
            }
        }
        #expect(visits == [Int](repeating: 1, count: total))
        for worker in 0..<threads {
            for i in ComputeThreads.splitRange(total, parts: threads, index: worker) { #expect(owner[i] == worker) }
        }
    }

    @Test func splitRangeCoversEverythingOnce() {
        for total in [0, 1, 7, 100] {
            for parts in 1...5 {
                let ranges = (0..<parts).map { ComputeThreads.splitRange(total, parts: parts, index: $0) }
                #expect(ranges.map(\.count).reduce(0, +) == total)
                #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                #expect(ranges.map(\.count).max()! - ranges.map(\.count).min()! <= 1)
            }
        }
    }
}
