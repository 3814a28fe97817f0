import FedTensor

/// A network ready to train: a root layer, its parameters in one `ParameterSet`, and its
/// non-trainable buffers in another, all named as in PyTorch's `state_dict`.
///
/// ```swift
/// let model = try Model(Sequential([("fc", Linear(784, 10))]), inputShape: [784], seed: 0)
/// let logits = model.forward(batch, training: true)
/// ```
public final class Model {
    public let root: any Layer
    /// Shape of one sample (without the batch dimension).
    public let inputShape: Shape
    /// Shape of one sample's output.
    public let outputShape: Shape
    public let parameters: ParameterSet
    public let buffers: ParameterSet
    /// Layers by dotted path, for freezing and inspection.
    public let layersByPath: [(path: String, layer: any Layer)]
    private let stateOrder: [(name: String, isBuffer: Bool)]

    /// Builds the parameter storage, initialises it from `seed` (one random stream per tensor,
    /// named by its path) and binds every layer to it.
    /// - Throws: `ModelError` if a layer rejects the shape it would receive.
    public init(_ root: any Layer, inputShape: Shape, seed: UInt64 = 0) throws {
        self.root = root
        self.inputShape = inputShape
        let out = try root.outputShape(for: Shape([1] + inputShape.dims))
        self.outputShape = Shape(Array(out.dims.dropFirst()))

        var visits: [(path: String, layer: any Layer)] = []
        func walk(_ layer: any Layer, _ path: String) {
            visits.append((path, layer))
            for child in layer.children {
                let childPath = child.name.isEmpty ? path : (path.isEmpty ? child.name : path + "." + child.name)
                walk(child.layer, childPath)
            }
        }
        walk(root, "")
        self.layersByPath = visits

        func qualified(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }
        var paramLayout: [(name: String, shape: Shape)] = []
        var bufferLayout: [(name: String, shape: Shape)] = []
        var order: [(String, Bool)] = []
        var seen = Set<String>()
        for (path, layer) in visits {
            for spec in layer.parameterSpecs {
                let name = qualified(path, spec.name)
                guard seen.insert(name).inserted else {
                    throw ModelError(
                        .invalidConfiguration, "two tensors are named '\(name)'; give sibling layers distinct names")
                }
                paramLayout.append((name, spec.shape))
                order.append((name, false))
            }
            for spec in layer.bufferSpecs {
                let name = qualified(path, spec.name)
                guard seen.insert(name).inserted else {
                    throw ModelError(.invalidConfiguration, "two tensors are named '\(name)'")
                }
                bufferLayout.append((name, spec.shape))
                order.append((name, true))
            }
        }
        self.stateOrder = order
        parameters = ParameterSet(layout: paramLayout)
        buffers = ParameterSet(layout: bufferLayout)

        for (path, layer) in visits {
            var pv: [UnsafeMutablePointer<Float>] = []
            var pg: [UnsafeMutablePointer<Float>] = []
            for spec in layer.parameterSpecs {
                let e = parameters.entry(named: qualified(path, spec.name))!
                var rng = SeededRNG(seed: seed, stream: "init/" + e.name)
                spec.initializer.fill(UnsafeMutableBufferPointer(rebasing: parameters.values[e.range]), rng: &rng)
                pv.append(parameters.values.baseAddress! + e.offset)
                pg.append(parameters.gradients.baseAddress! + e.offset)
            }
            var bv: [UnsafeMutablePointer<Float>] = []
            for spec in layer.bufferSpecs {
                let e = buffers.entry(named: qualified(path, spec.name))!
                var rng = SeededRNG(seed: seed, stream: "init/" + e.name)
                spec.initializer.fill(UnsafeMutableBufferPointer(rebasing: buffers.values[e.range]), rng: &rng)
                bv.append(buffers.values.baseAddress! + e.offset)
            }
            layer.bind(
                parameters: ParameterBinding(values: pv, gradients: pg),
                buffers: ParameterBinding(values: bv, gradients: bv))
            layer.prepare(path: path, seed: seed)
        }
    }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters.count }

    /// Runs the network on a batch shaped `[N] + inputShape`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        precondition(
            Array(input.shape.dims.dropFirst()) == inputShape.dims,
            "model expects [N] + \(inputShape), got \(input.shape)")
        return root.forward(input, training: training)
    }

    /// Back-propagates the gradient of the loss with respect to the last forward's output,
    /// adding parameter gradients into `parameters.gradients`.
    public func backward(_ gradOutput: Tensor) {
        _ = root.backward(gradOutput, needsInputGradient: false)
    }

    /// Back-propagates and returns the gradient with respect to the input as well.
    public func backwardWithInputGradient(_ gradOutput: Tensor) -> Tensor {
        root.backward(gradOutput, needsInputGradient: true)
    }

    /// Parameters and buffers in PyTorch's `state_dict` order (per module: its parameters,
    /// then its buffers, then its children).
    public func stateDict() -> [(name: String, tensor: Tensor)] {
        stateOrder.map { name, isBuffer in
            (name, (isBuffer ? buffers : parameters).tensor(named: name)!)
        }
    }

    /// Loads tensors by name.
    /// - Parameter strict: if true, every parameter and buffer must be present and no other
    ///   name may appear, as PyTorch's `load_state_dict(strict=True)`.
    /// - Throws: `ModelError` naming the missing, unexpected or mis-shaped tensor.
    public func loadStateDict(_ state: [(name: String, tensor: Tensor)], strict: Bool = true) throws {
        var provided: [String: Tensor] = [:]
        for (name, t) in state { provided[name] = t }
        if strict {
            let missing = stateOrder.map(\.name).filter { provided[$0] == nil }
            if !missing.isEmpty {
                throw ModelError(.missingParameter, "missing tensors: \(missing.joined(separator: ", "))")
            }
            let known = Set(stateOrder.map(\.name))
            let unexpected = state.map(\.name).filter { !known.contains($0) }
            if !unexpected.isEmpty {
                throw ModelError(.unknownParameter, "unexpected tensors: \(unexpected.joined(separator: ", "))")
            }
        }
        // Check every shape before writing anything, so a bad file leaves the model untouched.
        for (name, isBuffer) in stateOrder {
            guard let t = provided[name] else { continue }
            let e = (isBuffer ? buffers : parameters).entry(named: name)!
            if e.shape != t.shape {
                throw ModelError(.shapeMismatch, "'\(name)': expected shape \(e.shape), found \(t.shape)")
            }
        }
        for (name, isBuffer) in stateOrder {
            if let t = provided[name] { try (isBuffer ? buffers : parameters).assign(t, to: name) }
        }
    }

    /// Freezes (or unfreezes) every layer whose path is `path` or starts with `path.`.
    /// - Throws: `ModelError` if no layer has that path.
    public func setFrozen(_ frozen: Bool, path: String) throws {
        let matches = layersByPath.filter { $0.path == path || $0.path.hasPrefix(path + ".") || path.isEmpty }
        guard !matches.isEmpty else {
            let paths = layersByPath.map(\.path).filter { !$0.isEmpty }
            throw ModelError(.unknownParameter, "no layer at '\(path)'; layers: \(paths.joined(separator: ", "))")
        }
        for m in matches { m.layer.isFrozen = frozen }
        parameters.setTrainable(!frozen, whereNameHasPrefix: path.isEmpty ? "" : path + ".")
    }
}
