import FedNN
import FedTensor

/// Per-class Gaussian statistics of a model's features at a cut (FedImpro): for each class c a
/// mean μ_c and a standard deviation σ_c per feature, stored class after class (`[classes ×
/// features]`).
///
/// A client starts a round from the broadcast global statistics and updates them from every
/// training batch's real features: for each class present in the batch,
///
///     μ_c ← β μ_c + (1 − β) mean_batch,c      σ_c ← min(β σ_c + (1 − β) std_batch,c, σ_max)
///
/// where std_batch,c is the sample standard deviation (n − 1 in the denominator; a class seen once
/// keeps its σ) and σ_max caps the spread, as the paper's code does (its `fed_split_noise_std`,
/// 0.1). β = 0 replaces a class's statistics by the batch's: what the official code does at the
/// paper's ResNet-18 cut (its batch weight is min(1, D / 5000) with D the feature count, so 1 for
/// D ≥ 5000; at 400 features it would be β = 0.92). β > 0 averages over batches.
public struct FeatureStatistics: Sendable, Equatable {
    public let classes: Int
    public let features: Int
    /// μ, `[classes × features]`.
    public var mean: [Float]
    /// σ, `[classes × features]`.
    public var std: [Float]

    /// Statistics of `classes × features` from their flat vectors.
    /// - Precondition: both hold `classes × features` values.
    public init(classes: Int, features: Int, mean: [Float], std: [Float]) {
        precondition(mean.count == classes * features && std.count == classes * features, "statistics' sizes")
        self.classes = classes
        self.features = features
        self.mean = mean
        self.std = std
    }

    /// The statistics every run starts from (the official code's): means uniform in [0, 1) from
    /// the stream `fedimpro/initial` of `seed`, every σ equal to `std`.
    public static func initial(classes: Int, features: Int, std: Float, seed: UInt64) -> FeatureStatistics {
        var rng = SeededRNG(seed: seed, stream: "fedimpro/initial")
        return FeatureStatistics(
            classes: classes, features: features, mean: (0..<(classes * features)).map { _ in rng.nextUniform() },
            std: [Float](repeating: std, count: classes * features))
    }

    /// Updates the statistics of the classes in `labels` from the batch's features `[N] + shape`
    /// (flattened per sample) with momentum β and the cap σ_max.
    public mutating func update(features batch: Tensor, labels: [Int32], momentum beta: Float, maximumStd: Float) {
        let n = labels.count
        let f = features
        precondition(batch.count == n * f, "a batch of \(n) samples needs \(n * f) feature values, got \(batch.count)")
        var members = [[Int]](repeating: [], count: classes)
        for (row, label) in labels.enumerated() { members[Int(label)].append(row) }
        let keep = Double(beta)
        batch.withUnsafeBufferPointer { h in
            mean.withUnsafeMutableBufferPointer { mu in
                std.withUnsafeMutableBufferPointer { sigma in
                    for c in 0..<classes where !members[c].isEmpty {
                        let rows = members[c]
                        let count = Double(rows.count)
                        for j in 0..<f {
                            var sum = 0.0
                            for r in rows { sum += Double(h[r * f + j]) }
                            let m = sum / count
                            let at = c * f + j
                            mu[at] = Float(keep * Double(mu[at]) + (1 - keep) * m)
                            guard rows.count > 1 else { continue }
                            var squares = 0.0
                            for r in rows {
                                let d = Double(h[r * f + j]) - m
                                squares += d * d
                            }
                            let s = (squares / (count - 1)).squareRoot()
                            sigma[at] = min(Float(keep * Double(sigma[at]) + (1 - keep) * s), maximumStd)
                        }
                    }
                }
            }
        }
    }

    /// A balanced batch of synthetic features drawn from the Gaussians: labels 0, 1, …, C−1
    /// repeated ⌊n / C⌋ + 1 times (the official code's), and for each row ĥ = μ_y + σ_y ⊙ z with
    /// z standard normal from `rng`. Returns the features `[rows, features]` and their labels.
    public func sample(
        forBatchOf n: Int, rng: inout SeededRNG
    ) -> (features: Tensor, labels: [Int32]) {
        let repeats = n / classes + 1
        let labels = (0..<(repeats * classes)).map { Int32($0 % classes) }
        let f = features
        var out = Tensor(uninitializedShape: [labels.count, f])
        out.withUnsafeMutableBufferPointer { h in
            mean.withUnsafeBufferPointer { mu in
                std.withUnsafeBufferPointer { sigma in
                    for (row, label) in labels.enumerated() {
                        let base = Int(label) * f
                        for j in 0..<f { h[row * f + j] = mu[base + j] + sigma[base + j] * rng.nextNormal() }
                    }
                }
            }
        }
        return (out, labels)
    }

    /// The plain mean of `statistics` (FedImpro's server: the selected clients, unweighted), means
    /// with means and standard deviations with standard deviations, in Double.
    /// - Precondition: a non-empty list of statistics of one size.
    public static func average(_ statistics: [FeatureStatistics]) -> FeatureStatistics {
        precondition(!statistics.isEmpty, "nothing to average")
        let (classes, features) = (statistics[0].classes, statistics[0].features)
        let count = classes * features
        var mean = [Double](repeating: 0, count: count)
        var std = [Double](repeating: 0, count: count)
        for s in statistics {
            precondition(s.classes == classes && s.features == features, "statistics of different sizes")
            for j in 0..<count {
                mean[j] += Double(s.mean[j])
                std[j] += Double(s.std[j])
            }
        }
        let k = Double(statistics.count)
        return FeatureStatistics(
            classes: classes, features: features, mean: mean.map { Float($0 / k) }, std: std.map { Float($0 / k) })
    }
}
