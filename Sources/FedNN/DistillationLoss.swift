import FedTensor

/// Knowledge distillation's loss (FedDF, Hinton et al.): the Kullback–Leibler divergence from the
/// teacher's softened distribution to the student's, averaged over the batch, as PyTorch's
/// `F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")`:
///
///     L = (1/N) Σ_n Σ_j p_j (log p_j − log q_j),   p = softmax(t / T), q = softmax(s / T)
///
/// and ∂L/∂s = (q − p) / (T·N).
public final class DistillationLoss {
    public let temperature: Float
    /// ∂L/∂(student logits) of the last `evaluate`, `[N, classes]`.
    public private(set) var gradient = Tensor(shape: [0])

    public init(temperature: Float = 1) {
        precondition(temperature > 0, "the temperature must be positive")
        self.temperature = temperature
    }

    /// The batch's loss; fills `gradient`.
    /// - Throws: `ModelError.invalidInput` if the two logit tensors differ in shape.
    @discardableResult
    public func evaluate(student: Tensor, teacher: Tensor) throws -> Float {
        guard student.shape.rank == 2, student.shape == teacher.shape else {
            throw ModelError(
                .invalidInput, "student logits \(student.shape) and teacher logits \(teacher.shape) differ")
        }
        let (n, c) = (student.shape[0], student.shape[1])
        gradient.prepareForOverwrite(shape: student.shape)
        let inverseT = 1 / temperature
        var total = 0.0
        var p = [Float](repeating: 0, count: c)
        var logP = [Float](repeating: 0, count: c)
        student.withUnsafeBufferPointer { sp in
            teacher.withUnsafeBufferPointer { tp in
                gradient.withUnsafeMutableBufferPointer { gp in
                    for r in 0..<n {
                        Self.logSoftmax(tp.baseAddress! + r * c, c, inverseT, into: &logP)
                        for j in 0..<c { p[j] = _exp(logP[j]) }
                        let row = sp.baseAddress! + r * c
                        var best = -Float.infinity
                        for j in 0..<c { best = max(best, row[j] * inverseT) }
                        var sum: Float = 0
                        for j in 0..<c { sum += _exp(row[j] * inverseT - best) }
                        let logSum = _logf(sum) + best
                        let g = gp.baseAddress! + r * c
                        for j in 0..<c {
                            let logQ = row[j] * inverseT - logSum
                            if p[j] > 0 { total += Double(p[j] * (logP[j] - logQ)) }
                            g[j] = (_exp(logQ) - p[j]) * inverseT / Float(n)
                        }
                    }
                }
            }
        }
        return Float(total / Double(n))
    }

    private static func logSoftmax(
        _ row: UnsafePointer<Float>, _ c: Int, _ inverseT: Float, into out: inout [Float]
    ) {
        var best = -Float.infinity
        for j in 0..<c { best = max(best, row[j] * inverseT) }
        var sum: Float = 0
        for j in 0..<c { sum += _exp(row[j] * inverseT - best) }
        let logSum = _logf(sum) + best
        for j in 0..<c { out[j] = row[j] * inverseT - logSum }
    }
}
