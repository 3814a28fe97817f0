import FedTensor

/// Square pooling window (kernel, stride, padding) over NCHW input, shared by the pooling layers.
struct PoolingWindow {
    let kernelSize, stride, padding: Int

    init(_ kernelSize: Int, stride: Int?, padding: Int) {
        precondition(kernelSize > 0 && (stride ?? 1) > 0 && padding >= 0 && 2 * padding <= kernelSize)
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
    }

    func geometry(_ s: Shape) -> ConvGeometry {
        ConvGeometry(
            channels: 1, height: s[2], width: s[3], kernelH: kernelSize, kernelW: kernelSize, strideH: stride,
            strideW: stride, padH: padding, padW: padding)
    }

    /// `[N, C, OH, OW]`, or a thrown error naming `layer` if the window does not fit.
    func outputShape(for input: Shape, layer: String) throws -> Shape {
        guard input.rank == 4, geometry(input).isValid else {
            throw ModelError(
                .shapeMismatch, "\(layer)(\(kernelSize)) expects [N, C, H, W] with H, W ≥ \(kernelSize), got \(input)")
        }
        let g = geometry(input)
        return [input[0], input[1], g.outHeight, g.outWidth]
    }
}
