import FedNN
import FedTensor

/// A model run in two parts around a cut: the low-level feature extractor (every layer up to and
/// including the one named by the cut) and the high-level part (the rest), as FedImpro splits a
/// network. The parts are the model's own layers on its own parameters, so gradients of either part
/// land in the model's gradient buffer; running the low part and then the high part is the model's
/// forward pass, layer for layer.
///
/// Nested `Sequential`s are read as the chain of their layers, so a cut can name any layer of that
/// chain by its dotted `state_dict` path (`pool2`, `net.3`, a residual stage `layer2`: after its
/// last block). The low part's parameters come first in the model's buffer (``lowParameterCount``).
///
/// ```swift
/// let split = try FeatureSplit(model: try ModelZoo.make("lenet5"), cut: "pool2")  // 400 features
/// let h = split.forwardLow(images, training: true)
/// let logits = split.forwardHigh(h, training: true)
/// ```
public final class FeatureSplit {
    public let model: Model
    /// The path of the last low-level layer.
    public let cut: String
    /// The shape of one sample's features at the cut, and their number.
    public let featureShape: Shape
    public var featureCount: Int { featureShape.count }
    /// The low part's parameters are the model's first `lowParameterCount` values.
    public let lowParameterCount: Int
    private let low: [any Layer]
    private let high: [any Layer]

    /// The split of `model` after the layer (or the last layer of the `Sequential`) at path `cut`.
    /// - Throws: ``FedNN/ModelError`` if the model is not a chain of layers, no layer has that
    ///   path, or nothing would be left above the cut.
    public init(model: Model, cut: String) throws {
        self.model = model
        self.cut = cut
        // The chain: Sequentials opened, every other layer a link, with Model's path rule.
        var chain: [(path: String, layer: any Layer)] = []
        func open(_ layer: any Layer, _ path: String) {
            if let sequential = layer as? Sequential {
                for child in sequential.layers {
                    open(child.layer, child.name.isEmpty ? path : (path.isEmpty ? child.name : path + "." + child.name))
                }
            } else {
                chain.append((path, layer))
            }
        }
        open(model.root, "")
        guard let last = chain.lastIndex(where: { $0.path == cut || $0.path.hasPrefix(cut + ".") }), !cut.isEmpty else {
            let names = chain.map(\.path).filter { !$0.isEmpty }
            throw ModelError(
                .invalidConfiguration,
                "no layer '\(cut)' to cut the model after; its layers are \(names.joined(separator: ", "))")
        }
        guard last < chain.count - 1 else {
            throw ModelError(.invalidConfiguration, "cutting after '\(cut)' leaves no layer above the cut")
        }
        low = chain[...last].map(\.layer)
        high = chain[(last + 1)...].map(\.layer)
        var shape = Shape([1] + model.inputShape.dims)
        for layer in low { shape = try layer.outputShape(for: shape) }
        featureShape = Shape(Array(shape.dims.dropFirst()))
        // The low part's parameters by name; Model lays parameters out in visit order, so they
        // are a prefix of the buffer.
        var lowNames = Set<String>()
        func collect(_ layer: any Layer, _ path: String) {
            for spec in layer.parameterSpecs { lowNames.insert(path.isEmpty ? spec.name : path + "." + spec.name) }
            for child in layer.children {
                collect(child.layer, child.name.isEmpty ? path : (path.isEmpty ? child.name : path + "." + child.name))
            }
        }
        for link in chain[...last] { collect(link.layer, link.path) }
        let entries = model.parameters.entries
        let prefix = entries.prefix { lowNames.contains($0.name) }
        precondition(prefix.count == lowNames.count, "the low part's parameters are not a prefix of the buffer")
        lowParameterCount = prefix.last.map { $0.offset + $0.count } ?? 0
    }

    /// The features of a batch `[N] + inputShape`: `[N] + featureShape`.
    public func forwardLow(_ input: Tensor, training: Bool) -> Tensor {
        var x = input
        for layer in low { x = layer.forward(x, training: training) }
        return x
    }

    /// The logits of a batch of features `[N] + featureShape`.
    public func forwardHigh(_ features: Tensor, training: Bool) -> Tensor {
        var x = features
        for layer in high { x = layer.forward(x, training: training) }
        return x
    }

    /// Back-propagates through the high part (after ``forwardHigh(_:training:)``), adding its
    /// parameter gradients, and returns the gradient with respect to its input features.
    public func backwardHigh(_ gradOutput: Tensor) -> Tensor {
        var g = gradOutput
        for layer in high.reversed() { g = layer.backward(g, needsInputGradient: true) }
        return g
    }

    /// Back-propagates the features' gradient through the low part (after
    /// ``forwardLow(_:training:)``), adding its parameter gradients.
    public func backwardLow(_ gradFeatures: Tensor) {
        var trainableBefore: [Bool] = []
        var any = false
        for layer in low {
            trainableBefore.append(any)
            any = any || layer.hasTrainableParameters
        }
        var g = gradFeatures
        for i in low.indices.reversed() { g = low[i].backward(g, needsInputGradient: trainableBefore[i]) }
    }
}

extension FeatureSplit {
    /// The losses of one FedImpro step (means over their own rows) and the real rows classified
    /// correctly.
    public struct StepLosses: Sendable {
        public var real: Float
        public var synthetic: Float?
        public var correct: Int
    }

    /// One FedImpro training step's forward and backward, adding into the model's gradient buffer
    /// (the caller zeroes it first): the real batch's features at the cut (handed to `observe`
    /// before anything else runs), followed by the `synthetic` features, go through the high part
    /// together; the loss is `realWeight · CE(real) + syntheticWeight · CE(synthetic)`, each a mean
    /// over its own rows; only the real rows' gradient goes on into the low part, so the synthetic
    /// features train the high part alone.
    /// - Parameter synthetic: features `[S, featureCount]` (or `[S] + featureShape`) and labels;
    ///   nil trains on the real batch alone.
    /// - Throws: ``FedNN/ModelError`` for labels outside the classes.
    public func step(
        images: Tensor, labels: [Int32], synthetic: (features: Tensor, labels: [Int32])?, realWeight: Float = 1,
        syntheticWeight: Float, losses: (real: SoftmaxCrossEntropy, synthetic: SoftmaxCrossEntropy),
        observe: (Tensor) -> Void = { _ in }
    ) throws -> StepLosses {
        let b = labels.count
        let f = featureCount
        let real = forwardLow(images, training: true)
        observe(real)
        guard let synthetic, !synthetic.labels.isEmpty else {
            let logits = forwardHigh(real, training: true)
            let value = try losses.real.evaluate(logits: logits, labels: labels)
            var g = losses.real.gradient
            if realWeight != 1 { g.withUnsafeMutableBufferPointer { for j in $0.indices { $0[j] *= realWeight } } }
            backwardLow(backwardHigh(g))
            return StepLosses(real: value, synthetic: nil, correct: losses.real.correct)
        }
        let s = synthetic.labels.count
        precondition(synthetic.features.count == s * f, "synthetic features must have \(f) values a row")
        var joined = Tensor(uninitializedShape: Shape([b + s] + featureShape.dims))
        joined.withUnsafeMutableBufferPointer { out in
            real.withUnsafeBufferPointer { out.baseAddress!.update(from: $0.baseAddress!, count: b * f) }
            synthetic.features.withUnsafeBufferPointer {
                (out.baseAddress! + b * f).update(from: $0.baseAddress!, count: s * f)
            }
        }
        let logits = forwardHigh(joined, training: true)
        let classes = logits.shape[1]
        func rows(_ range: Range<Int>) -> Tensor {
            var t = Tensor(uninitializedShape: [range.count, classes])
            t.withUnsafeMutableBufferPointer { out in
                logits.withUnsafeBufferPointer {
                    out.baseAddress!.update(
                        from: $0.baseAddress! + range.lowerBound * classes, count: range.count * classes)
                }
            }
            return t
        }
        let realLoss = try losses.real.evaluate(logits: rows(0..<b), labels: labels)
        let syntheticLoss = try losses.synthetic.evaluate(logits: rows(b..<(b + s)), labels: synthetic.labels)
        var g = Tensor(uninitializedShape: [b + s, classes])
        g.withUnsafeMutableBufferPointer { out in
            losses.real.gradient.withUnsafeBufferPointer { gr in
                for j in 0..<(b * classes) { out[j] = realWeight * gr[j] }
            }
            losses.synthetic.gradient.withUnsafeBufferPointer { gs in
                for j in 0..<(s * classes) { out[b * classes + j] = syntheticWeight * gs[j] }
            }
        }
        let gJoined = backwardHigh(g)
        var gReal = Tensor(uninitializedShape: Shape([b] + featureShape.dims))
        gReal.withUnsafeMutableBufferPointer { out in
            gJoined.withUnsafeBufferPointer { out.baseAddress!.update(from: $0.baseAddress!, count: b * f) }
        }
        backwardLow(gReal)
        return StepLosses(real: realLoss, synthetic: syntheticLoss, correct: losses.real.correct)
    }
}
