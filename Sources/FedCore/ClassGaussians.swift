import FedNN
import FedTensor

/// Per-class Gaussian moments of features: for each class its sample count, mean and covariance
/// (the population covariance, divided by n), the statistics CCVR's classifier calibration (Luo
/// et al., NeurIPS 2021) gathers from the clients and FuseFL uses after its last fusion.
///
/// Clients compute theirs from their data; the server pools them into the exact moments of the
/// union (`pooled`) and draws virtual features from the class Gaussians (`sample`).
public struct ClassGaussians: Sendable, Equatable {
    public let classes: Int
    public let features: Int
    public var counts: [Int]
    /// μ_c, `[classes × features]`.
    public var means: [Double]
    /// Σ_c, `[classes × features × features]`; zero for a class with no samples.
    public var covariances: [Double]

    public init(classes: Int, features: Int, counts: [Int], means: [Double], covariances: [Double]) {
        precondition(
            counts.count == classes && means.count == classes * features
                && covariances.count == classes * features * features, "moments' sizes")
        self.classes = classes
        self.features = features
        self.counts = counts
        self.means = means
        self.covariances = covariances
    }

    /// Running sums for ``init(accumulating:)``: Σx and Σxxᵀ per class.
    public struct Accumulator: Sendable {
        public let classes: Int
        public let features: Int
        var counts: [Int]
        var sums: [Double]
        var products: [Double]

        public init(classes: Int, features: Int) {
            self.classes = classes
            self.features = features
            counts = [Int](repeating: 0, count: classes)
            sums = [Double](repeating: 0, count: classes * features)
            products = [Double](repeating: 0, count: classes * features * features)
        }

        /// Adds a batch of features `[N] + shape` (flattened per sample) with their labels.
        /// - Throws: `ModelError.invalidInput` for a size that does not match or a label outside the classes.
        public mutating func add(_ batch: Tensor, labels: [Int32]) throws {
            let f = features
            guard batch.count == labels.count * f else {
                throw ModelError(
                    .invalidInput, "\(labels.count) samples need \(labels.count * f) features, got \(batch.count)")
            }
            if let bad = labels.first(where: { $0 < 0 || Int($0) >= classes }) {
                throw ModelError(.invalidInput, "label \(bad) outside 0..<\(classes)")
            }
            batch.withUnsafeBufferPointer { x in
                for (row, label) in labels.enumerated() {
                    let c = Int(label)
                    let v = x.baseAddress! + row * f
                    counts[c] += 1
                    for i in 0..<f {
                        let vi = Double(v[i])
                        sums[c * f + i] += vi
                        let base = (c * f + i) * f
                        for j in 0..<f { products[base + j] += vi * Double(v[j]) }
                    }
                }
            }
        }
    }

    /// The moments of everything `accumulator` saw.
    public init(accumulating a: Accumulator) {
        let f = a.features
        var means = [Double](repeating: 0, count: a.classes * f)
        var covariances = [Double](repeating: 0, count: a.classes * f * f)
        for c in 0..<a.classes where a.counts[c] > 0 {
            let n = Double(a.counts[c])
            for i in 0..<f { means[c * f + i] = a.sums[c * f + i] / n }
            for i in 0..<f {
                for j in 0..<f {
                    covariances[(c * f + i) * f + j] =
                        a.products[(c * f + i) * f + j] / n - means[c * f + i] * means[c * f + j]
                }
            }
        }
        self.init(classes: a.classes, features: f, counts: a.counts, means: means, covariances: covariances)
    }

    /// Why these moments cannot be a sample's (nil if they can): a mean or covariance beyond
    /// 10⁶ in magnitude, a negative variance, an asymmetric covariance, or a covariance larger
    /// than its variances allow (|Σᵢⱼ| > √(ΣᵢᵢΣⱼⱼ)), each up to rounding.
    public var implausibility: String? {
        let f = features
        for c in 0..<classes where counts[c] > 0 {
            for i in 0..<f {
                guard abs(means[c * f + i]) <= 1e6 else { return "class \(c): a mean beyond 10^6" }
            }
            for i in 0..<f {
                let vi = covariances[(c * f + i) * f + i]
                guard vi >= -1e-6 * (1 + abs(vi)), vi <= 1e6 else {
                    return "class \(c): variance \(vi) of feature \(i)"
                }
                for j in 0..<i {
                    let (a, b) = (covariances[(c * f + i) * f + j], covariances[(c * f + j) * f + i])
                    let vj = covariances[(c * f + j) * f + j]
                    let tolerance = 1e-4 * (1 + abs(a))
                    guard abs(a - b) <= tolerance, abs(a) <= (max(vi, 0) * max(vj, 0)).squareRoot() + tolerance else {
                        return "class \(c): covariance \(a) of features \(i), \(j) is not a covariance"
                    }
                }
            }
        }
        return nil
    }

    /// The exact moments of the union of the parts' samples:
    /// μ = Σ n_k μ_k / n and Σ = Σ n_k (Σ_k + μ_k μ_kᵀ) / n − μ μᵀ per class.
    /// - Precondition: the parts have the same classes and features.
    public static func pooled(_ parts: [ClassGaussians]) -> ClassGaussians {
        precondition(!parts.isEmpty, "nothing to pool")
        let (classes, f) = (parts[0].classes, parts[0].features)
        var sums = Accumulator(classes: classes, features: f)
        for p in parts {
            precondition(p.classes == classes && p.features == f, "moments of different sizes")
            for c in 0..<classes where p.counts[c] > 0 {
                let n = Double(p.counts[c])
                sums.counts[c] += p.counts[c]
                for i in 0..<f {
                    sums.sums[c * f + i] += n * p.means[c * f + i]
                    for j in 0..<f {
                        sums.products[(c * f + i) * f + j] +=
                            n * (p.covariances[(c * f + i) * f + j] + p.means[c * f + i] * p.means[c * f + j])
                    }
                }
            }
        }
        return ClassGaussians(accumulating: sums)
    }

    /// `perClass` virtual features `[n, features, 1, 1]` for every class with samples, drawn from
    /// N(μ_c, Σ_c) as μ_c + L_c z with L_c the Cholesky factor of Σ_c (a small multiple of the
    /// identity added when Σ_c is singular), class after class; and their labels.
    public func sample(perClass: Int, rng: inout SeededRNG) -> (features: Tensor, labels: [Int32]) {
        let f = features
        let present = (0..<classes).filter { counts[$0] > 0 }
        var values = [Float](repeating: 0, count: present.count * perClass * f)
        var labels: [Int32] = []
        labels.reserveCapacity(present.count * perClass)
        var z = [Double](repeating: 0, count: f)
        for (k, c) in present.enumerated() {
            let l = Self.cholesky(Array(covariances[(c * f * f)..<((c + 1) * f * f)]), f)
            for s in 0..<perClass {
                for i in 0..<f { z[i] = rng.nextNormalDouble() }
                let row = (k * perClass + s) * f
                for i in 0..<f {
                    var v = means[c * f + i]
                    for j in 0...i { v += l[i * f + j] * z[j] }
                    values[row + i] = Float(v)
                }
                labels.append(Int32(c))
            }
        }
        return (Tensor(shape: [labels.count, f, 1, 1], scalars: values), labels)
    }

    /// The lower Cholesky factor of the symmetric positive semi-definite `a` (`n × n`), with
    /// 10⁻⁶ × (its mean diagonal, or 1), growing tenfold, added to the diagonal until it factors.
    static func cholesky(_ a: [Double], _ n: Int) -> [Double] {
        let scale = max((0..<n).reduce(0) { $0 + a[$1 * n + $1] } / Double(max(n, 1)), 1e-12)
        var jitter = 0.0
        while true {
            var l = [Double](repeating: 0, count: n * n)
            var ok = true
            outer: for i in 0..<n {
                for j in 0...i {
                    var s = a[i * n + j] + (i == j ? jitter : 0)
                    for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                    if i == j {
                        guard s > 0 else {
                            ok = false
                            break outer
                        }
                        l[i * n + i] = s.squareRoot()
                    } else {
                        l[i * n + j] = s / l[j * n + j]
                    }
                }
            }
            if ok { return l }
            jitter = jitter == 0 ? 1e-6 * scale : jitter * 10
        }
    }
}
