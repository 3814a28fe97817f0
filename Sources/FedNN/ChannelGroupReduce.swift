import FedTensor

/// Combines `groups` equal groups of channels into one: `[N, G·C, …] → [N, C, …]`, output channel
/// c being the mean (or the sum) of input channels c, C + c, …, (G − 1)·C + c. FuseFL's averaging
/// adaptor (the mean of the M columns' outputs) and its final feature sum (the sum of the M
/// columns'); PyTorch: `torch.stack(x.chunk(G, dim=1)).mean(0)` (or `.sum(0)`).
public final class ChannelGroupReduce: Layer {
    public enum Mode: String, Sendable { case mean, sum }
    public let groups: Int
    public let mode: Mode
    private var inputShape = Shape([0])
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(groups: Int, mode: Mode) {
        precondition(groups >= 1, "ChannelGroupReduce needs at least one group")
        self.groups = groups
        self.mode = mode
    }

    private var scale: Float { mode == .mean ? 1 / Float(groups) : 1 }

    public func outputShape(for input: Shape) throws -> Shape {
        guard input.rank >= 2, input[1] % groups == 0 else {
            throw ModelError(
                .shapeMismatch, "ChannelGroupReduce: \(input) has no channel dimension divisible into \(groups) groups")
        }
        var out = input
        out[1] = input[1] / groups
        return out
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let n = input.shape[0]
        let c = input.shape[1] / groups
        let inner = input.count / (n * input.shape[1])
        var shape = input.shape
        shape[1] = c
        inputShape = input.shape
        output.prepareForOverwrite(shape: shape)
        let block = c * inner
        let scale = scale
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                for s in 0..<n {
                    let dst = y.baseAddress! + s * block
                    let src = x.baseAddress! + s * groups * block
                    dst.update(from: src, count: block)
                    for g in 1..<groups {
                        let part = src + g * block
                        for j in 0..<block { dst[j] += part[j] }
                    }
                    if scale != 1 { for j in 0..<block { dst[j] *= scale } }
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        guard needsInputGradient else { return noGradient }
        let n = inputShape[0]
        let block = gradOutput.count / n
        let scale = scale
        inputGrad.prepareForOverwrite(shape: inputShape)
        gradOutput.withUnsafeBufferPointer { gy in
            inputGrad.withUnsafeMutableBufferPointer { gx in
                for s in 0..<n {
                    let src = gy.baseAddress! + s * block
                    for g in 0..<groups {
                        let dst = gx.baseAddress! + (s * groups + g) * block
                        for j in 0..<block { dst[j] = scale * src[j] }
                    }
                }
            }
        }
        return inputGrad
    }
}
