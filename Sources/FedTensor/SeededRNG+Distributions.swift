#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Double-precision samplers for the distributions that data partitioning and client simulation need.
///
/// ```swift
/// var rng = SeededRNG(seed: 0, stream: "partition/dirichlet")
/// let shares = rng.nextDirichlet(alpha: [0.5, 0.5, 0.5])   // three positive shares summing to 1
/// ```
extension SeededRNG {
    /// Uniform in the open interval (0, 1) with 53 random bits, so its logarithm is always finite.
    @inlinable
    public mutating func nextOpenUniformDouble() -> Double {
        (Double(next() >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal in Double precision (Box–Muller; the second output is discarded so the
    /// generator's state stays a plain function of how many draws were made).
    public mutating func nextNormalDouble() -> Double {
        let u1 = nextOpenUniformDouble()
        let u2 = nextOpenUniformDouble()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }

    /// A draw from Gamma(`shape`, scale 1): mean `shape`, variance `shape`.
    ///
    /// Marsaglia & Tsang (2000) for `shape ≥ 1`; below 1 it boosts to `shape + 1` and multiplies
    /// by `U^(1/shape)`. For very small shapes the result can underflow to 0; ``nextDirichlet(alpha:)``
    /// works in log space to stay exact there.
    ///
    /// - Precondition: `shape > 0` and finite.
    public mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0 && shape.isFinite, "Gamma shape must be positive and finite; found \(shape)")
        return exp(nextLogGamma(shape: shape))
    }

    /// A draw from the Dirichlet distribution with concentration `alpha`: positive components
    /// summing to 1, component `i` with mean `alpha[i] / alpha.sum()`.
    ///
    /// - Precondition: `alpha` is non-empty and every entry is positive and finite.
    public mutating func nextDirichlet(alpha: [Double]) -> [Double] {
        precondition(!alpha.isEmpty, "Dirichlet needs at least one concentration parameter")
        // Normalising in log space keeps tiny concentrations (where Gamma draws underflow) well defined.
        var logs = alpha.map { a -> Double in
            precondition(a > 0 && a.isFinite, "Dirichlet concentrations must be positive and finite; found \(a)")
            return nextLogGamma(shape: a)
        }
        let top = logs.max()!
        var sum = 0.0
        for i in logs.indices {
            logs[i] = exp(logs[i] - top)
            sum += logs[i]
        }
        let scale = 1.0 / sum
        for i in logs.indices { logs[i] *= scale }
        return logs
    }

    /// A draw from the log-normal distribution: `exp(mu + sigma · Z)` with `Z` standard normal.
    public mutating func nextLogNormal(mu: Double, sigma: Double) -> Double {
        exp(mu + sigma * nextNormalDouble())
    }

    /// The logarithm of a Gamma(`shape`, 1) draw.
    @usableFromInline
    mutating func nextLogGamma(shape: Double) -> Double {
        if shape < 1 {
            // Gamma(k) = Gamma(k + 1) · U^(1/k) (Marsaglia & Tsang, section 6).
            return nextLogGamma(shape: shape + 1) + log(nextOpenUniformDouble()) / shape
        }
        let d = shape - 1.0 / 3.0
        let c = 1.0 / (9.0 * d).squareRoot()
        while true {
            let x = nextNormalDouble()
            let t = 1.0 + c * x
            guard t > 0 else { continue }
            let v = t * t * t
            let u = nextOpenUniformDouble()
            let x2 = x * x
            if u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + d * (1.0 - v + log(v)) {
                return log(d) + log(v)
            }
        }
    }
}
