import FedTensor

/// Parallel branches on the same input, their outputs concatenated along the channel
/// dimension (dim 1), as in Inception blocks or `torch.cat([b(x) for b in branches], 1)`.
public final class Concat: Layer {
    public let branches: [(name: String, layer: any Layer)]
    public var isFrozen = false {
        didSet { for b in branches { b.layer.isFrozen = isFrozen } }
    }
    private var branchChannels: [Int] = []
    private var output = Tensor(shape: [0])
    private var branchGrad = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(_ branches: [(name: String, layer: any Layer)]) {
        precondition(!branches.isEmpty)
        self.branches = branches
    }

    public var children: [(name: String, layer: any Layer)] { branches }

    public func outputShape(for input: Shape) throws -> Shape {
        var shapes: [Shape] = []
        for (name, b) in branches {
            do { shapes.append(try b.outputShape(for: input)) } catch let e as ModelError {
                throw ModelError(e.code, "branch '\(name)': \(e.message)")
            }
        }
        let first = shapes[0]
        for (i, s) in shapes.enumerated()
        where s.rank < 2 || s.rank != first.rank
            || s.dims[0] != first.dims[0] || s.dims.dropFirst(2) != first.dims.dropFirst(2)
        {
            throw ModelError(
                .shapeMismatch, "Concat: branch '\(branches[i].name)' gives \(s), incompatible with \(first)")
        }
        var out = first
        out[1] = shapes.reduce(0) { $0 + $1[1] }
        return out
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let outs = branches.map { $0.layer.forward(input, training: training) }
        let n = input.shape[0]
        branchChannels = outs.map { $0.shape[1] }
        var shape = outs[0].shape
        shape[1] = branchChannels.reduce(0, +)
        let inner = outs[0].count / (n * outs[0].shape[1])
        output.prepareForOverwrite(shape: shape)
        let total = shape[1]
        output.withUnsafeMutableBufferPointer { yp in
            var c0 = 0
            for o in outs {
                let c = o.shape[1]
                o.withUnsafeBufferPointer { op in
                    for s in 0..<n {
                        (yp.baseAddress! + (s * total + c0) * inner).update(
                            from: op.baseAddress! + s * c * inner, count: c * inner)
                    }
                }
                c0 += c
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        let n = gradOutput.shape[0]
        let total = gradOutput.shape[1]
        let inner = gradOutput.count / (n * total)
        var first = true
        var c0 = 0
        for (i, (_, branch)) in branches.enumerated() {
            let c = branchChannels[i]
            var shape = gradOutput.shape
            shape[1] = c
            branchGrad.prepareForOverwrite(shape: shape)
            gradOutput.withUnsafeBufferPointer { gp in
                branchGrad.withUnsafeMutableBufferPointer { bp in
                    for s in 0..<n {
                        (bp.baseAddress! + s * c * inner).update(
                            from: gp.baseAddress! + (s * total + c0) * inner, count: c * inner)
                    }
                }
            }
            c0 += c
            let g = branch.backward(branchGrad, needsInputGradient: needsInputGradient)
            guard needsInputGradient else { continue }
            if first { inputGrad.prepareForOverwrite(shape: g.shape) }
            inputGrad.withUnsafeMutableBufferPointer { d in
                g.withUnsafeBufferPointer { src in
                    if first {
                        d.baseAddress!.update(from: src.baseAddress!, count: src.count)
                    } else {
                        for j in 0..<src.count { d[j] += src[j] }
                    }
                }
            }
            first = false
        }
        return needsInputGradient ? inputGrad : noGradient
    }
}
