import FedTensor

/// `y = body(x) + shortcut(x)`, with the identity as the default shortcut (a ResNet block
/// before its final activation). The body's children are named directly under this block's
/// path (`conv1`, `gn1`, …) and the shortcut as `shortcut`, matching torchvision-style names.
public final class Residual: Layer {
    public let body: Sequential
    public let shortcut: (any Layer)?
    public var isFrozen = false {
        didSet {
            body.isFrozen = isFrozen
            shortcut?.isFrozen = isFrozen
        }
    }
    private var output = Tensor(shape: [0])
    private var inputGrad = Tensor(shape: [0])

    public init(_ body: Sequential, shortcut: (any Layer)? = nil) {
        self.body = body
        self.shortcut = shortcut
    }

    public var children: [(name: String, layer: any Layer)] {
        var c: [(name: String, layer: any Layer)] = [("", body)]
        if let shortcut { c.append(("shortcut", shortcut)) }
        return c
    }

    public func outputShape(for input: Shape) throws -> Shape {
        let a = try body.outputShape(for: input)
        let b = try shortcut?.outputShape(for: input) ?? input
        guard a == b else {
            throw ModelError(.shapeMismatch, "Residual: body gives \(a) but shortcut gives \(b) for input \(input)")
        }
        return a
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let a = body.forward(input, training: training)
        let b = shortcut?.forward(input, training: training) ?? input
        output.prepareForOverwrite(shape: a.shape)
        output.withUnsafeMutableBufferPointer { y in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    VectorKernels.add(ap.baseAddress!, bp.baseAddress!, into: y.baseAddress!, ap.count)
                }
            }
        }
        return output
    }

    public func backward(_ gradOutput: Tensor, needsInputGradient: Bool) -> Tensor {
        let gBody = body.backward(gradOutput, needsInputGradient: needsInputGradient)
        let gShort = shortcut?.backward(gradOutput, needsInputGradient: needsInputGradient) ?? gradOutput
        guard needsInputGradient else { return noGradient }
        inputGrad.prepareForOverwrite(shape: gBody.shape)
        inputGrad.withUnsafeMutableBufferPointer { d in
            gBody.withUnsafeBufferPointer { a in
                gShort.withUnsafeBufferPointer { b in
                    VectorKernels.add(a.baseAddress!, b.baseAddress!, into: d.baseAddress!, a.count)
                }
            }
        }
        return inputGrad
    }
}
