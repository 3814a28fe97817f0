#if canImport(CDNNL)
    import CDNNL
#endif

/// oneDNN's direct convolution kernels (forward, backward-data, backward-weights) for one shape
/// and thread count, on PyTorch's layouts: NCHW activations, `[out, in, kh, kw]` weight, `[out]`
/// bias. The primitives run on their own blocked layouts; the reorders to and from them are part
/// of each call. Created once per shape and kept by the layer (creation JIT-compiles kernels).
///
/// Not thread-safe: one instance belongs to one layer, which runs on one thread at a time.
public final class DirectConvolution {
    /// What a set of primitives is built for.
    public struct Configuration: Hashable, Sendable {
        public var geometry: ConvGeometry
        public var batch: Int
        public var outChannels: Int
        public var hasBias: Bool
        /// Forward for inference only, or forward training with both backward passes.
        public var inference: Bool
        public var threads: Int

        public init(geometry: ConvGeometry, batch: Int, outChannels: Int, hasBias: Bool, inference: Bool, threads: Int)
        {
            self.geometry = geometry
            self.batch = batch
            self.outChannels = outChannels
            self.hasBias = hasBias
            self.inference = inference
            self.threads = threads
        }
    }

    public let configuration: Configuration
    private let handle: OpaquePointer

    /// Builds the primitives, or returns nil where oneDNN is not compiled in or has no kernel
    /// for this configuration (the caller then uses im2col and GEMM).
    public init?(_ configuration: Configuration) {
        #if canImport(CDNNL)
            let g = configuration.geometry
            var shape = fs_conv_shape(
                batch: Int64(configuration.batch), in_channels: Int64(g.channels), in_height: Int64(g.height),
                in_width: Int64(g.width), out_channels: Int64(configuration.outChannels), kernel_h: Int64(g.kernelH),
                kernel_w: Int64(g.kernelW), stride_h: Int64(g.strideH), stride_w: Int64(g.strideW),
                pad_h: Int64(g.padH),
                pad_w: Int64(g.padW), has_bias: configuration.hasBias ? 1 : 0,
                inference: configuration.inference ? 1 : 0)
            var conv: OpaquePointer?
            guard fs_conv_create(&shape, Int32(configuration.threads), &conv) == 0, let conv else { return nil }
            self.configuration = configuration
            handle = conv
        #else
            return nil
        #endif
    }

    deinit {
        #if canImport(CDNNL)
            fs_conv_destroy(handle)
        #endif
    }

    /// oneDNN's names for the implementations it chose, e.g. `jit:avx512_core` (empty for a pass
    /// an inference configuration does not have).
    public var implementations: (forward: String, backwardData: String, backwardWeights: String) {
        #if canImport(CDNNL)
            return (
                String(cString: fs_conv_impl(handle, 0)), String(cString: fs_conv_impl(handle, 1)),
                String(cString: fs_conv_impl(handle, 2))
            )
        #else
            return ("", "", "")
        #endif
    }

    /// `output = conv(input, weight) + bias`.
    public func forward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        output: UnsafeMutablePointer<Float>
    ) {
        #if canImport(CDNNL)
            check(fs_conv_forward(handle, input, weight, bias, output), "forward")
        #endif
    }

    /// Backward through the last `forward` (same `input` and `weight`, unchanged since):
    /// `inputGradient` is overwritten with dL/dx, `weightGradient` and `biasGradient` are added
    /// to. A nil pointer skips that gradient.
    public func backward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
        inputGradient: UnsafeMutablePointer<Float>?, weightGradient: UnsafeMutablePointer<Float>?,
        biasGradient: UnsafeMutablePointer<Float>?
    ) {
        precondition(!configuration.inference, "DirectConvolution.backward on an inference configuration")
        #if canImport(CDNNL)
            check(
                fs_conv_backward(handle, input, weight, outputGradient, inputGradient, weightGradient, biasGradient),
                "backward")
        #endif
    }

    #if canImport(CDNNL)
        private func check(_ status: Int32, _ pass: String) {
            // Shapes and buffers were validated when the primitives were made; a failure here is a bug.
            precondition(
                status == 0, "oneDNN convolution \(pass) failed: \(String(cString: fs_dnnl_status_string(status)))")
        }
    #endif
}
