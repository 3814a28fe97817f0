import FedTensor

/// The models of FuseFL's progressive fusion (Tang et al., NeurIPS 2024), built from a
/// ``BlockNetwork`` cut into K blocks and M clients' columns.
///
/// A *fused block* runs the M clients' copies of one block side by side on the same input and
/// concatenates their outputs along the channels: `blocks.j.columns.m.…`. Every column but those
/// of the first block starts with an *adaptor* that maps the previous fused block's M·C channels
/// back to the C its block takes: a 1×1 convolution (`blocks.j.columns.m.adaptor.weight`, `.bias`)
/// or the mean of the M groups (no parameters).
///
/// - A client's model at stage s (from 0) is the fused blocks 0..<s, then its own block s
///   (`blocks.s.adaptor`, `blocks.s.block`), its own later blocks (`blocks.j.block`) and its
///   classifier (`classifier`).
/// - The fused model is the K fused blocks, the sum of the last one's M outputs (`sum`) and one
///   classifier.
///
/// In PyTorch, fused block j > 0 is
/// `torch.cat([col[m](torch.cat(x, 1)) for m in range(M)], 1)` with `col[m] = Sequential(adaptor, block)`.
public enum FusedNetwork {
    /// How a column reads the previous fused block's M outputs.
    public enum Adaptor: String, Sendable, CaseIterable {
        /// A 1×1 convolution from M·C to C channels, with bias, trained with its block.
        case conv
        /// The mean of the M outputs: exact and free of parameters.
        case mean
    }

    /// Column `index`'s layers of block `block`: its adaptor (none for the first block) and the block.
    static func column(_ network: BlockNetwork, block: Int, columns: Int, adaptor: Adaptor) -> Sequential {
        let body = network.blocks[block].make()
        guard block > 0 else { return Sequential([("block", body)]) }
        let c = network.blocks[block].inputChannels
        let front: any Layer =
            switch adaptor {
            case .conv: Conv2d(columns * c, c, kernelSize: 1)
            case .mean: ChannelGroupReduce(groups: columns, mode: .mean)
            }
        return Sequential([("adaptor", front), ("block", body)])
    }

    /// Block `block` fused from `columns` columns.
    static func fusedBlock(_ network: BlockNetwork, block: Int, columns: Int, adaptor: Adaptor) -> any Layer {
        Sequential([
            (
                "columns",
                Concat(
                    (0..<columns).map { m in
                        (String(m), column(network, block: block, columns: columns, adaptor: adaptor) as any Layer)
                    })
            )
        ])
    }

    /// A client's model at `stage` (0..<K): fused blocks before it, its own blocks from it on.
    /// Fused blocks are frozen. Weights come from `seed`; load the fused and own ones by name.
    /// - Throws: `ModelError` if the blocks do not fit together.
    public static func stageModel(
        _ network: BlockNetwork, stage: Int, columns: Int, adaptor: Adaptor, seed: UInt64
    ) throws -> Model {
        precondition((0..<network.blocks.count).contains(stage), "stage \(stage) of \(network.blocks.count)")
        var blocks: [(name: String, layer: any Layer)] = []
        for j in 0..<network.blocks.count {
            let layer: any Layer =
                j < stage
                ? fusedBlock(network, block: j, columns: columns, adaptor: adaptor)
                : j == stage
                    ? column(network, block: j, columns: columns, adaptor: adaptor)
                    : Sequential([("block", network.blocks[j].make())])
            blocks.append((String(j), layer))
        }
        let model = try Model(
            Sequential([("blocks", Sequential(blocks)), ("classifier", network.classifier())]),
            inputShape: network.inputShape, seed: seed)
        for j in 0..<stage { try model.setFrozen(true, path: "blocks.\(j)") }
        return model
    }

    /// The fused model: K fused blocks of `columns` columns, the sum of the last block's column
    /// outputs and one classifier (without it, the model's output is the summed features).
    public static func fusedModel(
        _ network: BlockNetwork, columns: Int, adaptor: Adaptor, withClassifier: Bool = true, seed: UInt64 = 0
    ) throws -> Model {
        let blocks = (0..<network.blocks.count).map { j in
            (String(j), fusedBlock(network, block: j, columns: columns, adaptor: adaptor))
        }
        var layers: [(name: String, layer: any Layer)] = [
            ("blocks", Sequential(blocks)), ("sum", ChannelGroupReduce(groups: columns, mode: .sum)),
        ]
        if withClassifier { layers.append(("classifier", network.classifier())) }
        return try Model(Sequential(layers), inputShape: network.inputShape, seed: seed)
    }

    /// The name a client's own tensor of block `block` (`blocks.j.adaptor.…`, `blocks.j.block.…`)
    /// takes in column `column` of the fused block: `blocks.j.columns.m.…`.
    public static func columnName(_ ownName: String, block: Int, column: Int) -> String? {
        let prefix = "blocks.\(block)."
        guard ownName.hasPrefix(prefix) else { return nil }
        return prefix + "columns.\(column)." + ownName.dropFirst(prefix.count)
    }
}
