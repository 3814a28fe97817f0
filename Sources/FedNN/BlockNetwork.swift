import FedTensor

/// A network described as K blocks applied in turn and a classifier on the last block's flat
/// features, the form block-wise training (FuseFL) works on. Each block is built afresh by its
/// factory, so one description makes the layers of many clients.
public struct BlockNetwork {
    public struct Block {
        /// Channels the block takes in (dimension 1 of its input).
        public let inputChannels: Int
        /// Builds a fresh copy of the block's layers.
        public let make: () -> any Layer

        public init(inputChannels: Int, make: @escaping () -> any Layer) {
            self.inputChannels = inputChannels
            self.make = make
        }
    }

    /// One sample's input shape.
    public let inputShape: Shape
    /// The last block's output per sample (a flat vector), which the classifier takes.
    public let features: Int
    public let blocks: [Block]
    /// Builds a fresh classifier (`features` → classes).
    public let classifier: () -> any Layer

    public init(inputShape: Shape, features: Int, blocks: [Block], classifier: @escaping () -> any Layer) {
        precondition(!blocks.isEmpty, "a block network needs at least one block")
        self.inputShape = inputShape
        self.features = features
        self.blocks = blocks
        self.classifier = classifier
    }
}
