import FedTensor
import FedTestSupport
import Testing

@testable import FedNN

/// Forward and backward passes against values PyTorch 2.15 computed (`scripts/make_golden.py`
/// wrote `Fixtures/golden.safetensors`): same weights and inputs, same outputs and gradients.
/// Layers that run GEMM or convolution kernels are checked under every compiled-in backend.
@Suite struct GoldenFixtureTests {
    static let fixturePath: String = {
        let file = "\(#filePath)"
        return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures/golden.safetensors"
    }()

    let golden: SafeTensorsFile

    init() throws {
        golden = try SafeTensors.read(path: Self.fixturePath)
    }

    func tensor(_ name: String) throws -> Tensor {
        try #require(golden[name], "fixture has no tensor \(name)")
    }

    /// `prefix/param/<name>` entries as a state dict.
    func params(_ prefix: String) -> [(name: String, tensor: Tensor)] {
        golden.tensors.compactMap { entry in
            entry.name.hasPrefix(prefix + "/param/")
                ? (String(entry.name.dropFirst(prefix.count + 7)), entry.tensor) : nil
        }
    }

    func expectClose(
        _ actual: Tensor, _ expected: Tensor, _ what: String, tolerance: Float = 1e-5,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(actual.shape == expected.shape, "\(what): shape", sourceLocation: sourceLocation)
        guard actual.shape == expected.shape else { return }
        let closeness = Closeness(actual.scalars, expected.scalars)
        #expect(closeness.isWithin(tolerance), "\(what): \(closeness)", sourceLocation: sourceLocation)
    }

    /// Runs forward (and backward with the stored upstream gradient) and compares everything stored.
    func check(_ name: String, _ layer: any Layer, training: Bool = true) throws {
        let input = try tensor("\(name)/input")
        let model = try Model(layer, inputShape: Shape(Array(input.shape.dims.dropFirst())))
        try model.loadStateDict(params(name), strict: false)
        let out = model.forward(input, training: training)
        expectClose(out, try tensor("\(name)/output"), "\(name) output")
        guard training else { return }
        model.parameters.zeroGradients()
        let dx = model.backwardWithInputGradient(try tensor("\(name)/grad_output"))
        expectClose(dx, try tensor("\(name)/grad_input"), "\(name) grad_input")
        for e in model.parameters.entries {
            let local = e.name
            expectClose(
                model.parameters.gradient(named: local)!, try tensor("\(name)/grad/\(local)"), "\(name) grad \(local)")
        }
    }

    @Test(arguments: ComputeBackend.available)
    func tinyCNNLogitsLossAndGradients(backend: ComputeBackend) throws {
        try ComputeBackend.with(backend) { try tinyCNN() }
    }

    func tinyCNN() throws {
        let net = Sequential([
            ("conv1", Conv2d(1, 4, kernelSize: 5, padding: 2)), ("relu1", ReLU()), ("pool1", MaxPool2d(2)),
            ("conv2", Conv2d(4, 8, kernelSize: 5, padding: 2)), ("relu2", ReLU()), ("pool2", MaxPool2d(2)),
            ("flatten", Flatten()), ("fc1", Linear(392, 16)), ("relu3", ReLU()), ("fc2", Linear(16, 10)),
        ])
        let model = try Model(net, inputShape: [1, 28, 28])
        try model.loadStateDict(params("tinycnn"), strict: true)
        let input = try tensor("tinycnn/input")
        let labels = try tensor("tinycnn/labels").scalars.map { Int32($0) }
        let logits = model.forward(input, training: true)
        expectClose(logits, try tensor("tinycnn/logits"), "logits")
        let loss = SoftmaxCrossEntropy()
        let value = try loss.evaluate(logits: logits, labels: labels)
        #expect(abs(value - (try tensor("tinycnn/loss"))[0]) < 1e-5)
        model.parameters.zeroGradients()
        let dx = model.backwardWithInputGradient(loss.gradient)
        expectClose(dx, try tensor("tinycnn/grad_input"), "grad_input")
        for e in model.parameters.entries {
            expectClose(
                model.parameters.gradient(named: e.name)!, try tensor("tinycnn/grad/\(e.name)"), "grad \(e.name)")
        }
    }

    @Test(arguments: ComputeBackend.available)
    func linear(backend: ComputeBackend) throws {
        try ComputeBackend.with(backend) { try check("linear", Linear(7, 5)) }
    }

    @Test(arguments: ComputeBackend.available)
    func convStride2Pad1(backend: ComputeBackend) throws {
        try ComputeBackend.with(backend) {
            try check("conv_s2p1", Conv2d(3, 5, kernelSize: 3, stride: 2, padding: 1))
        }
    }

    @Test(arguments: ComputeBackend.available)
    func convStride1Pad0(backend: ComputeBackend) throws {
        try ComputeBackend.with(backend) { try check("conv_s1p0", Conv2d(2, 4, kernelSize: 3)) }
    }
    @Test func maxPool2() throws { try check("maxpool2", MaxPool2d(2)) }
    @Test func maxPool3Stride2() throws { try check("maxpool3s2", MaxPool2d(3, stride: 2)) }
    @Test func maxPoolTiesGoToTheFirstMaximum() throws {
        try check("maxpool2_ties", MaxPool2d(2))
        try check("maxpool3s2_ties", MaxPool2d(3, stride: 2))
    }
    @Test func avgPool2() throws { try check("avgpool2", AvgPool2d(2)) }
    @Test func groupNorm() throws { try check("groupnorm", GroupNorm(groups: 2, channels: 6)) }
    @Test func layerNorm() throws { try check("layernorm", LayerNorm([6])) }

    @Test func batchNormTrainingAndRunningStatistics() throws {
        let bn = BatchNorm2d(4)
        try check("batchnorm2d_train", bn)
        let input = try tensor("batchnorm2d_train/input")
        let model = try Model(BatchNorm2d(4), inputShape: Shape(Array(input.shape.dims.dropFirst())))
        _ = model.forward(input, training: true)
        model.backward(Tensor(shape: input.shape))
        expectClose(
            model.buffers.tensor(named: "running_mean")!, try tensor("batchnorm2d_train/running_mean"), "running_mean")
        expectClose(
            model.buffers.tensor(named: "running_var")!, try tensor("batchnorm2d_train/running_var"), "running_var")
    }

    @Test func batchNormEvaluation() throws { try check("batchnorm2d_eval", BatchNorm2d(4), training: false) }

    @Test func crossEntropyWithExtremeLogits() throws {
        let loss = SoftmaxCrossEntropy()
        let labels = try tensor("cross_entropy/labels").scalars.map { Int32($0) }
        let value = try loss.evaluate(logits: try tensor("cross_entropy/input"), labels: labels)
        let expected = try tensor("cross_entropy/output")[0]
        #expect(abs(value - expected) <= 1e-5 * abs(expected))
        expectClose(loss.gradient, try tensor("cross_entropy/grad_input"), "cross-entropy gradient")
    }

    @Test func meanSquaredError() throws {
        let mse = MeanSquaredError()
        let value = try mse.evaluate(prediction: try tensor("mse/input"), target: try tensor("mse/target"))
        #expect(abs(value - (try tensor("mse/output"))[0]) < 1e-6)
        expectClose(mse.gradient, try tensor("mse/grad_input"), "mse gradient")
    }

    /// hparams: SGD `[lr, momentum, dampening, weight_decay, nesterov]`;
    /// Adam `[lr, beta1, beta2, eps, weight_decay, decoupled]`.
    @Test(arguments: ["sgd_plain", "sgd_momentum", "sgd_nesterov_wd", "sgd_dampening", "adam", "adam_wd", "adamw"])
    func optimizerTrajectory(_ name: String) throws {
        let h = try tensor("\(name)/hparams").scalars
        let opt: any Optimizer =
            name.hasPrefix("sgd")
            ? SGD(learningRate: h[0], momentum: h[1], dampening: h[2], weightDecay: h[3], nesterov: h[4] == 1)
            : Adam(
                learningRate: h[0], beta1: h[1], beta2: h[2], eps: h[3], weightDecay: h[4],
                decoupledWeightDecay: h[5] == 1)
        let p = ParameterSet(layout: [("p", [6])])
        p.setFlatValues(try tensor("\(name)/p0").scalars)
        for step in 1...3 {
            let g = try tensor("\(name)/grad\(step)").scalars
            for i in 0..<6 { p.gradients[i] = g[i] }
            opt.step(p)
            expectClose(
                Tensor(shape: [6], scalars: p.flatValues), try tensor("\(name)/p\(step)"), "\(name) step \(step)",
                tolerance: 1e-6)
        }
    }
}
