import FedTensor

/// Softmax followed by the negative log-likelihood, fused and numerically stable (the row
/// maximum is subtracted before `exp`), averaged over the batch as `torch.nn.CrossEntropyLoss()`.
///
/// ```swift
/// let loss = SoftmaxCrossEntropy()
/// let value = try loss.evaluate(logits: logits, labels: labels)   // also fills loss.gradient
/// model.backward(loss.gradient)
/// ```
public final class SoftmaxCrossEntropy {
    /// d(mean loss)/d(logits) of the last `evaluate`, `[N, classes]`.
    public private(set) var gradient = Tensor(shape: [0])
    /// Rows of the last batch whose arg-max matched the label.
    public private(set) var correct = 0

    public init() {}

    /// Mean loss over the batch; fills `gradient` and `correct`.
    /// - Throws: `ModelError.invalidInput` if a label is outside `0..<classes` or the counts differ.
    @discardableResult
    public func evaluate(logits: Tensor, labels: [Int32], computeGradient: Bool = true) throws -> Float {
        guard logits.shape.rank == 2, logits.shape[0] == labels.count else {
            throw ModelError(.invalidInput, "logits \(logits.shape) do not match \(labels.count) labels")
        }
        let (n, c) = (logits.shape[0], logits.shape[1])
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= c }) {
            throw ModelError(.invalidInput, "label \(bad) outside 0..<\(c)")
        }
        if computeGradient { gradient.prepareForOverwrite(shape: logits.shape) }
        var total: Double = 0
        var hits = 0
        let scale = 1 / Float(n)
        logits.withUnsafeBufferPointer { lp in
            let grad: UnsafeMutablePointer<Float>? =
                computeGradient ? gradient.withUnsafeMutableBufferPointer { $0.baseAddress! } : nil
            for r in 0..<n {
                let row = lp.baseAddress! + r * c
                var best = row[0]
                var arg = 0
                for j in 1..<max(c, 1) where row[j] > best {
                    best = row[j]
                    arg = j
                }
                var sum: Float = 0
                for j in 0..<c { sum += _exp(row[j] - best) }
                let logSum = _logf(sum) + best
                let label = Int(labels[r])
                total += Double(logSum - row[label])
                if arg == label { hits += 1 }
                if let g = grad?.advanced(by: r * c) {
                    let inv = 1 / sum
                    for j in 0..<c { g[j] = _exp(row[j] - best) * inv * scale }
                    g[label] -= scale
                }
            }
        }
        correct = hits
        return Float(total / Double(n))
    }
}

#if canImport(Glibc)
    import Glibc
    @inline(__always) func _exp(_ x: Float) -> Float { Glibc.expf(x) }
    @inline(__always) func _logf(_ x: Float) -> Float { Glibc.logf(x) }
#elseif canImport(Darwin)
    import Darwin
    @inline(__always) func _exp(_ x: Float) -> Float { Darwin.expf(x) }
    @inline(__always) func _logf(_ x: Float) -> Float { Darwin.logf(x) }
#endif
