/// How ``Partitioner`` divides a labelled dataset among federated clients.
///
/// ```swift
/// let partition = try Partitioner.split(
///     labels: train.labels, classes: 10, clients: 100, scheme: .dirichlet(alpha: 0.5), seed: 0)
/// ```
public enum PartitionScheme: Sendable, Hashable {
    /// Independent and identically distributed: a seeded shuffle cut into contiguous pieces whose
    /// sizes differ by at most one.
    case iid

    /// Label skew: for each class, the shares of the clients are drawn from Dirichlet(`alpha` · 1).
    ///
    /// Small `alpha` (0.1) gives each client a few dominant classes; large `alpha` (100) approaches
    /// IID. Draws are repeated, continuing the same random stream, until every client holds at
    /// least `minSize` samples — the algorithm of the Flower baseline (`dirichlet_label_split`).
    /// - Parameters:
    ///   - alpha: Concentration, positive.
    ///   - minSize: Fewest samples any client may receive.
    case dirichlet(alpha: Double, minSize: Int = 10)

    /// Pathological label skew of the FedAvg paper (McMahan et al. 2017): samples sorted by label
    /// are cut into `clients · perClient` equal shards, and each client receives `perClient` of
    /// them at random, so it sees at most about `perClient` classes.
    case shards(perClient: Int)

    /// Quantity skew: client sizes proportional to log-normal(0, `sigma`) draws (each client at
    /// least one sample), labels IID. `sigma = 0` gives near-equal sizes.
    case quantitySkew(sigma: Double)

    /// A short stable name, used in random-stream names and reports: `iid`, `dirichlet`, `shards`
    /// or `quantity-skew`.
    public var name: String {
        switch self {
        case .iid: "iid"
        case .dirichlet: "dirichlet"
        case .shards: "shards"
        case .quantitySkew: "quantity-skew"
        }
    }
}

extension PartitionScheme: CustomStringConvertible {
    public var description: String {
        switch self {
        case .iid: "iid"
        case .dirichlet(let alpha, let minSize): "dirichlet(alpha: \(alpha), minSize: \(minSize))"
        case .shards(let perClient): "shards(perClient: \(perClient))"
        case .quantitySkew(let sigma): "quantity-skew(sigma: \(sigma))"
        }
    }
}

extension PartitionScheme {
    /// The schemes by the names experiment files and the command line use.
    public enum Kind: String, CaseIterable, Sendable {
        case iid, dirichlet, shards, quantity
    }

    /// The scheme of `kind` with its parameters (each used only by its own scheme).
    public init(_ kind: Kind, alpha: Double, minSize: Int, shardsPerClient: Int, sigma: Double) {
        switch kind {
        case .iid: self = .iid
        case .dirichlet: self = .dirichlet(alpha: alpha, minSize: minSize)
        case .shards: self = .shards(perClient: shardsPerClient)
        case .quantity: self = .quantitySkew(sigma: sigma)
        }
    }
}
