import FedTensor

/// Inverted dropout, as `torch.nn.Dropout(p)`: in training each element is zeroed with
/// probability `p` and the survivors scaled by `1/(1-p)`; in evaluation it is the identity.
/// Masks come from a random stream named after the layer's path, so runs are reproducible.
public final class Dropout: Layer {
    public let probability: Float
    private var rng = SeededRNG(seed: 0)
    private var mask = Tensor(shape: [0])
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])
    private var trained = false

    public init(_ probability: Float = 0.5) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.probability = probability
    }

    public func prepare(path: String, seed: UInt64) {
        rng = SeededRNG(seed: seed, stream: "dropout/" + path)
    }

    public func outputShape(for input: Shape) throws -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        trained = training
        guard training, probability > 0 else { return x }
        mask.prepareForOverwrite(shape: x.shape)
        output.prepareForOverwrite(shape: x.shape)
        let scale = 1 / (1 - probability)
        let keep = 1 - probability
        x.withUnsafeBufferPointer { xp in
            mask.withUnsafeMutableBufferPointer { mp in
                output.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<xp.count {
                        let m: Float = rng.nextUniform() < keep ? scale : 0
                        mp[i] = m
                        yp[i] = xp[i] * m
                    }
                }
            }
        }
        return output
    }

    public func dropTrainingCache() { trained = false }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        precondition(trained, "Dropout.backward without a training forward")
        trained = false
        guard needsInputGradient else { return noGradient }
        guard probability > 0 else { return dy }
        inputGrad.prepareForOverwrite(shape: dy.shape)
        dy.withUnsafeBufferPointer { gp in
            mask.withUnsafeBufferPointer { mp in
                inputGrad.withUnsafeMutableBufferPointer { dxp in
                    for i in 0..<gp.count { dxp[i] = gp[i] * mp[i] }
                }
            }
        }
        return inputGrad
    }
}
