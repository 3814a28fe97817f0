import FedTensor

/// Mean of squared differences over all elements, as `torch.nn.MSELoss()`.
public final class MeanSquaredError {
    /// d(loss)/d(prediction) of the last `evaluate`.
    public private(set) var gradient = Tensor(shape: [0])

    public init() {}

    /// The loss; fills `gradient`.
    /// - Throws: `ModelError.shapeMismatch` if the shapes differ.
    @discardableResult
    public func evaluate(prediction: Tensor, target: Tensor) throws -> Float {
        guard prediction.shape == target.shape else {
            throw ModelError(.shapeMismatch, "prediction \(prediction.shape) vs target \(target.shape)")
        }
        gradient.prepareForOverwrite(shape: prediction.shape)
        let n = prediction.count
        let scale = 2 / Float(n)
        var total: Double = 0
        prediction.withUnsafeBufferPointer { p in
            target.withUnsafeBufferPointer { t in
                gradient.withUnsafeMutableBufferPointer { g in
                    for i in 0..<n {
                        let d = p[i] - t[i]
                        total += Double(d * d)
                        g[i] = scale * d
                    }
                }
            }
        }
        return Float(total / Double(n))
    }
}
