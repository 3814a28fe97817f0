import FedNN
import FedTensor
import Testing

@testable import FedCore

/// CCVR's class statistics: moments against hand computation, pooling equal to the union's
/// moments, and samples whose mean and covariance match the Gaussian they were drawn from.
struct ClassGaussiansTests {
    @Test func momentsMatchHandComputation() throws {
        // Class 0: (1, 2), (3, 6); class 1: (0, 1); class 2: none.
        var a = ClassGaussians.Accumulator(classes: 3, features: 2)
        try a.add(Tensor(shape: [2, 2], scalars: [1, 2, 0, 1]), labels: [0, 1])
        try a.add(Tensor(shape: [1, 2, 1, 1], scalars: [3, 6]), labels: [0])
        let g = ClassGaussians(accumulating: a)
        #expect(g.counts == [2, 1, 0])
        #expect(g.means == [2, 4, 0, 1, 0, 0])
        // Population covariance of class 0: var x = 1, var y = 4, cov = 2.
        #expect(g.covariances == [1, 2, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: ModelError.self) { try a.add(Tensor(shape: [1, 3], scalars: [1, 2, 3]), labels: [0]) }
        #expect(throws: ModelError.self) { try a.add(Tensor(shape: [1, 2], scalars: [1, 2]), labels: [3]) }
    }

    @Test func pooledMomentsAreTheUnionsMoments() throws {
        var rng = SeededRNG(seed: 4, stream: "data")
        let (n, f, classes) = (300, 4, 3)
        let x = (0..<(n * f)).map { _ in rng.nextNormal() * 2 + 1 }
        let y = (0..<n).map { _ in Int32(rng.nextInt(below: classes)) }
        var whole = ClassGaussians.Accumulator(classes: classes, features: f)
        try whole.add(Tensor(shape: [n, f], scalars: x), labels: y)
        // Three uneven parts, one of them without class 2.
        var parts: [ClassGaussians] = []
        for range in [0..<50, 50..<220, 220..<300] {
            var part = ClassGaussians.Accumulator(classes: classes, features: f)
            let rows = range.filter { range != 0..<50 || y[$0] != 2 }
            try part.add(
                Tensor(shape: [rows.count, f], scalars: rows.flatMap { x[($0 * f)..<($0 * f + f)] }),
                labels: rows.map { y[$0] })
            parts.append(ClassGaussians(accumulating: part))
        }
        var rest = ClassGaussians.Accumulator(classes: classes, features: f)
        let dropped = (0..<50).filter { y[$0] == 2 }
        try rest.add(
            Tensor(shape: [dropped.count, f], scalars: dropped.flatMap { x[($0 * f)..<($0 * f + f)] }),
            labels: dropped.map { y[$0] })
        parts.append(ClassGaussians(accumulating: rest))
        let pooled = ClassGaussians.pooled(parts)
        let direct = ClassGaussians(accumulating: whole)
        #expect(pooled.counts == direct.counts)
        for (a, b) in zip(pooled.means, direct.means) { #expect(abs(a - b) < 1e-9) }
        for (a, b) in zip(pooled.covariances, direct.covariances) { #expect(abs(a - b) < 1e-9) }
    }

    @Test func samplesHaveTheGaussiansMeanAndCovariance() {
        // Class 0: a correlated 3-d Gaussian; class 1: no samples (not drawn); class 2: rank 1.
        let sigma: [Double] = [4, 1.2, -0.8, 1.2, 1, 0.3, -0.8, 0.3, 0.5]
        let singular: [Double] = [1, 2, 0, 2, 4, 0, 0, 0, 0]
        let g = ClassGaussians(
            classes: 3, features: 3, counts: [10, 0, 5], means: [1, -2, 0.5, 0, 0, 0, 3, 3, 3],
            covariances: sigma + [Double](repeating: 0, count: 9) + singular)
        var rng = SeededRNG(seed: 9, stream: "sample")
        let per = 20_000
        let (x, labels) = g.sample(perClass: per, rng: &rng)
        #expect(x.shape == [2 * per, 3, 1, 1])
        #expect(labels == [Int32](repeating: 0, count: per) + [Int32](repeating: 2, count: per))
        let v = x.scalars
        for (k, c) in [0, 2].enumerated() {
            var mean = [Double](repeating: 0, count: 3)
            for s in 0..<per { for i in 0..<3 { mean[i] += Double(v[(k * per + s) * 3 + i]) / Double(per) } }
            for i in 0..<3 { #expect(abs(mean[i] - g.means[c * 3 + i]) < 0.06, "class \(c) mean \(i)") }
            for i in 0..<3 {
                for j in 0..<3 {
                    var cov = 0.0
                    for s in 0..<per {
                        let row = (k * per + s) * 3
                        cov += (Double(v[row + i]) - mean[i]) * (Double(v[row + j]) - mean[j]) / Double(per)
                    }
                    // Within 5 % of the largest variance.
                    #expect(abs(cov - g.covariances[(c * 3 + i) * 3 + j]) < 0.2, "class \(c) Σ[\(i)][\(j)]")
                }
            }
        }
    }

    @Test func choleskyFactorsAndSurvivesSingularMatrices() {
        let a: [Double] = [4, 2, 2, 3]
        let l = ClassGaussians.cholesky(a, 2)
        #expect(l == [2, 0, 1, 2.0.squareRoot()])
        // Rank 1: a little jitter on the diagonal, L Lᵀ within 1e-5 of A.
        let s: [Double] = [1, 1, 1, 1]
        let ls = ClassGaussians.cholesky(s, 2)
        for i in 0..<2 {
            for j in 0..<2 {
                let product = ls[i * 2] * ls[j * 2] + ls[i * 2 + 1] * ls[j * 2 + 1]
                #expect(abs(product - s[i * 2 + j]) < 1e-5)
            }
        }
        #expect(ClassGaussians.cholesky([0, 0, 0, 0], 2).allSatisfy { $0.isFinite })
    }
}
