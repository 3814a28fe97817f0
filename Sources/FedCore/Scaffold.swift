/// SCAFFOLD (Karimireddy et al. 2020, "SCAFFOLD: Stochastic Controlled Averaging for Federated
/// Learning"), server side of Algorithm 1 with the option II control update on the clients
/// (``ScaffoldClientRule``):
///
///     x ← x + η_g · (1/|S|) Σ_{i∈S} Δ_i
///     c ← c + (|S|/N) · (1/|S|) Σ_{i∈S} Δc_i  =  c + (1/N) Σ_{i∈S} Δc_i
///
/// Both means are unweighted, as in the paper (sample counts are ignored). N is
/// `context.totalClients`. The server control c is broadcast as "control" (zeros before the first
/// round); every update must carry the client's "control_delta" Δc_i, and each client keeps its c_i
/// as its state "control". Server state: "control" (c, empty before the first round).
public final class Scaffold: Strategy {
    public let name = "scaffold"
    /// η_g, the global step size.
    public let serverLearningRate: Double
    /// The server control variate c; empty (meaning zero) before the first round.
    public private(set) var control: [Float] = []
    public var state: [String: [Float]] { control.isEmpty ? [:] : ["control": control] }
    private let accumulator = DeltaAccumulator()

    /// SCAFFOLD with global step size η_g > 0.
    public init(serverLearningRate: Double = 1) {
        precondition(serverLearningRate.isFinite && serverLearningRate > 0, "server learning rate must be positive")
        self.serverLearningRate = serverLearningRate
    }

    /// The name of the broadcast server control, of the client's kept control, and of the uploaded Δc_i.
    public static let controlName = "control"
    public static let controlDeltaName = "control_delta"

    public func broadcast(parameterCount: Int) -> [String: [Float]] {
        [Self.controlName: control.isEmpty ? [Float](repeating: 0, count: parameterCount) : control]
    }

    public var clientAlgorithm: any ClientAlgorithm { ScaffoldClientAlgorithm() }

    public func uploads(parameterCount: Int) -> [String: Int] { [Self.controlDeltaName: parameterCount] }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        try StrategyError.checkRestorable(state, names: [Self.controlName], count: parameterCount, strategy: name)
        control = state[Self.controlName] ?? []
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        let count = global.count
        guard control.isEmpty || control.count == count else {
            throw StrategyError(
                .stateMismatch, "scaffold: control has \(control.count) elements, the model has \(count)")
        }
        try ClientUpdate.validate(updates, parameterCount: count, requireVectors: [Self.controlDeltaName])
        guard context.totalClients >= updates.count else {
            throw StrategyError(
                .invalidContext,
                "scaffold: \(updates.count) updates but only \(context.totalClients) clients in the federation")
        }
        let sampled = Double(updates.count)
        let terms = [
            DeltaAccumulator.Term(
                vector: \.delta, weights: Array(repeating: 1 / sampled, count: updates.count), what: "delta"),
            // (|S|/N) · mean_i Δc_i = Σ_i Δc_i / N
            DeltaAccumulator.Term(
                vector: \.vectors[Self.controlDeltaName]!,
                weights: Array(repeating: 1 / Double(context.totalClients), count: updates.count),
                what: "control delta"),
        ]
        // The control starts at zero; a first aggregation that fails leaves it unset.
        let fresh = control.isEmpty
        if fresh { control = [Float](repeating: 0, count: count) }
        let eta = serverLearningRate
        do {
            try control.withUnsafeMutableBufferPointer { c in
                try accumulator.weightedSums(updates, terms, count: count) { range, sums in
                    for (i, j) in range.enumerated() {
                        global[j] = Float(Double(global[j]) + eta * sums[0][i])
                        c[j] = Float(Double(c[j]) + sums[1][i])
                    }
                }
            }
        } catch {
            if fresh { control = [] }
            throw error
        }
    }
}
