import FedTensor

/// Ready-made networks for 28×28 single-channel images (Fashion-MNIST, MNIST), named as in
/// their PyTorch definitions so weights move between the two unchanged.
public enum ModelZoo {
    /// The models by name; `make(_:seed:)` also takes `mlp-WIDTH`, the mlp with hidden layers of
    /// WIDTH units (e.g. `mlp-4800`, 26.9 million parameters, for runs with large models).
    public static let names = ["mlp", "cnn", "lenet5", "resnet"]

    /// The names `make(_:seed:)` takes, for messages.
    public static let usage = "mlp, mlp-WIDTH (1...65536), cnn, lenet5, resnet"

    /// Whether `make(_:seed:)` knows `name`.
    public static func isKnown(_ name: String) -> Bool {
        names.contains(name) || width(ofWideMLP: name) != nil
    }

    /// The width of an `mlp-WIDTH` name.
    static func width(ofWideMLP name: String) -> Int? {
        guard name.hasPrefix("mlp-"), let width = Int(name.dropFirst(4)), (1...65_536).contains(width) else {
            return nil
        }
        return width
    }

    /// Builds the named model with weights initialised from `seed`.
    /// - Throws: `ModelError.unknownModel` listing the valid names.
    public static func make(_ name: String, seed: UInt64 = 0, classes: Int = 10) throws -> Model {
        switch name {
        case "mlp": return try Model(mlp(classes: classes), inputShape: [1, 28, 28], seed: seed)
        case "cnn": return try Model(cnn(classes: classes), inputShape: [1, 28, 28], seed: seed)
        case "lenet5": return try Model(lenet5(classes: classes), inputShape: [1, 28, 28], seed: seed)
        case "resnet": return try Model(resnet(classes: classes), inputShape: [1, 28, 28], seed: seed)
        default:
            guard let width = width(ofWideMLP: name) else {
                throw ModelError(.unknownModel, "unknown model '\(name)'; choose one of: \(usage)")
            }
            return try Model(mlp(classes: classes, width: width), inputShape: [1, 28, 28], seed: seed)
        }
    }

    /// The FedAvg paper's 2NN: 784-200-200-10 with ReLU, 199,210 parameters. Parameter names
    /// `net.1.*`, `net.3.*`, `net.5.*` as `nn.Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear)`.
    /// With `width`, hidden layers of that many units (the same names).
    public static func mlp(classes: Int = 10, width: Int = 200) -> any Layer {
        Sequential([
            (
                "net",
                Sequential(
                    [
                        Flatten(), Linear(784, width), ReLU(), Linear(width, width), ReLU(), Linear(width, classes),
                    ] as [any Layer])
            )
        ])
    }

    /// The FedAvg paper's CNN: conv5×5 1→32 (same) + ReLU + maxpool 2, conv5×5 32→64 (same) +
    /// ReLU + maxpool 2, fc 3136→512 + ReLU, fc 512→10; 1,663,370 parameters named `conv1`,
    /// `conv2`, `fc1`, `fc2`.
    ///
    /// Each block pools before it rectifies: max pooling commutes with ReLU (both outputs and
    /// gradients are identical, see `ModelTests`), and ReLU then touches a quarter of the values.
    public static func cnn(classes: Int = 10) -> any Layer {
        Sequential([
            ("conv1", Conv2d(1, 32, kernelSize: 5, padding: 2)), ("pool1", MaxPool2d(2)), ("relu1", ReLU()),
            ("conv2", Conv2d(32, 64, kernelSize: 5, padding: 2)), ("pool2", MaxPool2d(2)), ("relu2", ReLU()),
            ("flatten", Flatten()), ("fc1", Linear(7 * 7 * 64, 512)), ("relu3", ReLU()),
            ("fc2", Linear(512, classes)),
        ])
    }

    /// LeNet-5 for 28×28 inputs (first convolution padded to keep 28×28), with ReLU and max
    /// pooling: conv 1→6 5×5 pad 2, pool, conv 6→16 5×5, pool, fc 400→120→84→10; 61,706 parameters.
    public static func lenet5(classes: Int = 10) -> any Layer {
        Sequential([
            ("conv1", Conv2d(1, 6, kernelSize: 5, padding: 2)), ("relu1", ReLU()), ("pool1", MaxPool2d(2)),
            ("conv2", Conv2d(6, 16, kernelSize: 5)), ("relu2", ReLU()), ("pool2", MaxPool2d(2)),
            ("flatten", Flatten()), ("fc1", Linear(400, 120)), ("relu3", ReLU()),
            ("fc2", Linear(120, 84)), ("relu4", ReLU()), ("fc3", Linear(84, classes)),
        ])
    }

    /// A ResNet-8 for 28×28 inputs with GroupNorm (batch-independent, so it behaves under
    /// non-IID federated clients): a 3×3 stem with 16 channels, three basic blocks with
    /// 16, 32 and 64 channels (the last two with stride 2 and a 1×1 projection shortcut),
    /// global average pooling and a linear classifier. 77,754 parameters.
    ///
    /// With `width`, the stem and blocks have `width`, `2·width` and `4·width` channels (the
    /// narrow columns of FuseFL); every GroupNorm then takes the largest group count up to
    /// min(8, channels / 2) that divides its channels (8 at the default width).
    public static func resnet(classes: Int = 10, width: Int = 16) -> any Layer {
        Sequential(resnetUnits(classes: classes, width: width))
    }

    /// The ResNet-8's top-level layers in order: `conv1`, `gn1`, `relu`, `layer1`, `layer2`,
    /// `layer3`, `pool`, `flatten`, `fc`.
    static func resnetUnits(classes: Int, width: Int) -> [(name: String, layer: any Layer)] {
        precondition(width >= 2, "a ResNet needs at least 2 channels")
        func norm(_ channels: Int) -> GroupNorm {
            let groups = stride(from: min(8, max(channels / 2, 1)), through: 1, by: -1).first { channels % $0 == 0 }!
            return GroupNorm(groups: groups, channels: channels)
        }
        func block(_ cin: Int, _ cout: Int, stride: Int) -> any Layer {
            let body = Sequential([
                ("conv1", Conv2d(cin, cout, kernelSize: 3, stride: stride, padding: 1, bias: false)),
                ("gn1", norm(cout)), ("relu1", ReLU()),
                ("conv2", Conv2d(cout, cout, kernelSize: 3, padding: 1, bias: false)),
                ("gn2", norm(cout)),
            ])
            let shortcut: (any Layer)? =
                stride == 1 && cin == cout
                ? nil
                : Sequential(
                    [Conv2d(cin, cout, kernelSize: 1, stride: stride, bias: false), norm(cout)] as [any Layer])
            return Sequential([("", Residual(body, shortcut: shortcut)), ("relu2", ReLU())])
        }
        let w = width
        return [
            ("conv1", Conv2d(1, w, kernelSize: 3, padding: 1, bias: false)), ("gn1", norm(w)), ("relu", ReLU()),
            ("layer1", Sequential([block(w, w, stride: 1)])),
            ("layer2", Sequential([block(w, 2 * w, stride: 2)])),
            ("layer3", Sequential([block(2 * w, 4 * w, stride: 2)])),
            ("pool", AvgPool2d(7)), ("flatten", Flatten()), ("fc", Linear(4 * w, classes)),
        ]
    }

    /// A zoo network cut into `count` blocks and a classifier, for block-wise training (FuseFL).
    /// Only `resnet` is cut: into 1, 2 or 4 blocks (4: the stem, `layer1`, `layer2`, `layer3` with
    /// the pooling; 2: stem and `layer1`, then `layer2` and `layer3`), each at `width` (see
    /// ``resnet(classes:width:)``). The blocks keep the full network's names.
    /// - Throws: `ModelError` for another model or block count.
    public static func blocks(_ name: String, count: Int, width: Int = 16, classes: Int = 10) throws -> BlockNetwork {
        guard name == "resnet" else {
            throw ModelError(.unknownModel, "only 'resnet' is cut into blocks, not '\(name)'")
        }
        let groups: [Range<Int>]
        switch count {
        case 1: groups = [0..<8]
        case 2: groups = [0..<4, 4..<8]
        case 4: groups = [0..<3, 3..<4, 4..<5, 5..<8]
        default: throw ModelError(.invalidConfiguration, "resnet is cut into 1, 2 or 4 blocks, not \(count)")
        }
        // Channels entering each top-level layer, and the width after the last block (the features).
        let w = width
        let inputs = [1, w, w, w, w, 2 * w, 4 * w, 4 * w]
        return BlockNetwork(
            inputShape: [1, 28, 28], features: 4 * w,
            blocks: groups.map { range in
                BlockNetwork.Block(inputChannels: inputs[range.lowerBound]) {
                    Sequential(Array(resnetUnits(classes: classes, width: width)[range]))
                }
            },
            classifier: { Linear(4 * w, classes) })
    }
}
