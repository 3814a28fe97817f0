import Foundation
import Testing

@testable import FedTensor

@Suite struct DistributionTests {
    static let sampleCount = 20_000

    /// Mean and (unbiased) variance of `samples`.
    func moments(_ samples: [Double]) -> (mean: Double, variance: Double) {
        let n = Double(samples.count)
        let mean = samples.reduce(0, +) / n
        let variance = samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        return (mean, variance)
    }

    /// Gamma(k, 1) has mean k and variance k. Tolerances are five standard errors over 20 000 draws:
    /// sqrt(k / n) for the mean and sqrt(k² (2 + 6 / k) / n) for the variance (excess kurtosis 6 / k).
    @Test(arguments: [0.3, 1.0, 5.0])
    func gammaMatchesMeanAndVariance(shape k: Double) {
        var rng = SeededRNG(seed: 7, stream: "test/gamma")
        let samples = (0..<Self.sampleCount).map { _ in rng.nextGamma(shape: k) }
        let n = Double(Self.sampleCount)
        let (mean, variance) = moments(samples)
        #expect(samples.allSatisfy { $0 >= 0 && $0.isFinite })
        #expect(abs(mean - k) < 5 * (k / n).squareRoot(), "mean \(mean) for shape \(k)")
        #expect(abs(variance - k) < 5 * (k * k * (2 + 6 / k) / n).squareRoot(), "variance \(variance) for shape \(k)")
    }

    @Test func dirichletComponentsSumToOneWithMeansAlphaOverTotal() {
        let alpha = [0.5, 1.0, 2.0, 4.5]
        let total = alpha.reduce(0, +)
        var rng = SeededRNG(seed: 3, stream: "test/dirichlet")
        var sums = [Double](repeating: 0, count: alpha.count)
        for _ in 0..<Self.sampleCount {
            let p = rng.nextDirichlet(alpha: alpha)
            #expect(p.count == alpha.count)
            #expect(abs(p.reduce(0, +) - 1) < 1e-12)
            #expect(p.allSatisfy { $0 >= 0 && $0 <= 1 })
            for i in p.indices { sums[i] += p[i] }
        }
        // Component variance a_i (a_0 - a_i) / (a_0² (a_0 + 1)) is at most 0.028, so the standard
        // error of a mean over 20 000 draws is below 0.0012; 0.006 is five of them.
        for i in alpha.indices {
            let mean = sums[i] / Double(Self.sampleCount)
            #expect(abs(mean - alpha[i] / total) < 0.006, "component \(i): mean \(mean)")
        }
    }

    /// With concentrations far below 1 most Gamma draws underflow Double (a Gamma(0.001) draw is
    /// about e^-1000); the log-space normalisation must still give finite shares summing to 1.
    /// Dir(0.001 · 1₁₀₀₀) puts more than half its mass on one component with probability
    /// n · P(Beta(a, 1 - a) > 1/2) ≈ ln 2 = 0.693; over 2 000 draws the standard error is 0.0103.
    @Test func dirichletWithTinyConcentrationsStaysNormalised() {
        var rng = SeededRNG(seed: 1, stream: "test/dirichlet-tiny")
        let draws = 2000
        var dominated = 0
        for _ in 0..<draws {
            let p = rng.nextDirichlet(alpha: [Double](repeating: 0.001, count: 1000))
            #expect(abs(p.reduce(0, +) - 1) < 1e-9)
            #expect(p.allSatisfy { $0.isFinite && $0 >= 0 })
            if p.max()! > 0.5 { dominated += 1 }
        }
        let fraction = Double(dominated) / Double(draws)
        #expect(abs(fraction - 0.693_147) < 0.05, "fraction with a component above 1/2: \(fraction)")
    }

    @Test func logNormalHasExpectedLogMoments() {
        var rng = SeededRNG(seed: 5, stream: "test/lognormal")
        let logs = (0..<Self.sampleCount).map { _ in log(rng.nextLogNormal(mu: 1.5, sigma: 0.5)) }
        let (mean, variance) = moments(logs)
        // log X ~ N(1.5, 0.25): standard errors 0.0035 (mean) and 0.0025 (variance).
        #expect(abs(mean - 1.5) < 0.018)
        #expect(abs(variance - 0.25) < 0.013)
    }

    @Test func normalDoubleHasUnitMoments() {
        var rng = SeededRNG(seed: 9, stream: "test/normal")
        let (mean, variance) = moments((0..<Self.sampleCount).map { _ in rng.nextNormalDouble() })
        #expect(abs(mean) < 5 * (1.0 / Double(Self.sampleCount)).squareRoot())
        #expect(abs(variance - 1) < 5 * (2.0 / Double(Self.sampleCount)).squareRoot())
    }

    @Test func samplesAreDeterministicPerSeed() {
        func draws(seed: UInt64) -> [Double] {
            var rng = SeededRNG(seed: seed, stream: "test/determinism")
            return (0..<50).map { _ in rng.nextGamma(shape: 0.7) } + rng.nextDirichlet(alpha: [0.3, 0.3, 2])
                + [rng.nextLogNormal(mu: 0, sigma: 1)]
        }
        #expect(draws(seed: 11) == draws(seed: 11))
        #expect(draws(seed: 11) != draws(seed: 12))
    }
}
