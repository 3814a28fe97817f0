/// A federated-learning algorithm: the server's aggregation and, through ``clientAlgorithm``, what
/// its clients do differently from plain local SGD.
///
/// A strategy owns its server state (momentum, moment estimates, control variate) and updates the
/// flat global parameters in place. Updates are aggregated in the order given (callers sort them
/// by client id) with `Double` accumulators, so equal inputs give bit-identical results.
///
/// Everything algorithm-specific that crosses the network is named here, so the round engine can
/// carry it without knowing what it is:
/// - ``broadcast(parameterCount:)``: vectors sent to every selected client with the model
///   (SCAFFOLD's server control "control").
/// - ``clientAlgorithm``: builds each client's rule from those vectors and the per-client state the
///   client kept from its last round; the rule's ``ClientRuleOutput`` names the vectors it uploads
///   (SCAFFOLD's "control_delta", in ``ClientUpdate/vectors``) and its new per-client state.
/// - ``state`` and ``restore(state:)``: the server state, for checkpoints.
///
/// Every update is validated before anything is written: if `aggregate` throws a ``StrategyError``,
/// neither `global` nor ``state`` has changed. The strategy never drops a client on its own; the
/// caller decides whether to remove the offending update (the error names its client id) and
/// aggregate again.
///
/// ```swift
/// let strategy = try StrategyFactory.makeStrategy(name: "fedavgm", parameters: ["momentum": 0.9])
/// try strategy.aggregate(global: model.parameters.values, updates: updates,
///                        context: AggregationContext(round: 1, totalClients: 100))
/// ```
public protocol Strategy: AnyObject {
    /// The name configs use for this strategy, such as "fedavg".
    var name: String { get }

    /// Applies one round's updates to `global`.
    /// - Throws: ``StrategyError`` if `updates` is empty or any update is invalid for this strategy;
    ///   `global` and ``state`` are then unchanged.
    func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws

    /// The server state by name, each vector in the layout of the global parameters; empty before the first round.
    var state: [String: [Float]] { get }

    /// Replaces the server state by `state` (as read from ``state``), for a model of `parameterCount` parameters.
    /// - Throws: ``StrategyError/Code/stateMismatch`` for an unknown name, a missing vector or a wrong length;
    ///   the state is then unchanged.
    func restore(state: [String: [Float]], parameterCount: Int) throws

    /// The vectors every selected client receives with the model this round, by name; empty for most strategies.
    func broadcast(parameterCount: Int) -> [String: [Float]]

    /// The vectors every update must upload, by name, with their lengths; the server rejects an
    /// update that lacks one, uploads another, or has another length. Empty for most strategies.
    func uploads(parameterCount: Int) -> [String: Int]

    /// The client side of the algorithm: a value holding only the strategy's parameters, which
    /// client threads and networked clients hold to build their rules.
    var clientAlgorithm: any ClientAlgorithm { get }
}

extension Strategy {
    public func broadcast(parameterCount: Int) -> [String: [Float]] { [:] }

    public func uploads(parameterCount: Int) -> [String: Int] { [:] }

    public var clientAlgorithm: any ClientAlgorithm { PlainClientAlgorithm() }
}

/// The client side of a strategy: builds a client's ``ClientRule`` for one round.
public protocol ClientAlgorithm: Sendable {
    /// The rule for one client and round, from the vectors of ``Strategy/broadcast(parameterCount:)``
    /// and the state the client kept (empty on its first round).
    func makeRule(broadcast: [String: [Float]], state: [String: [Float]]) -> any ClientRule
}

/// Plain local SGD (FedAvg, FedAvgM, FedNova, FedOpt).
public struct PlainClientAlgorithm: ClientAlgorithm {
    public init() {}
    public func makeRule(broadcast: [String: [Float]], state: [String: [Float]]) -> any ClientRule {
        PlainClientRule()
    }
}

extension StrategyError {
    /// Checks that `state` holds exactly the vectors `names`, each of `count` elements (or nothing at all).
    static func checkRestorable(
        _ state: [String: [Float]], names: [String], count: Int, strategy: String
    ) throws {
        if state.isEmpty { return }
        for key in state.keys.sorted() where !names.contains(key) {
            throw StrategyError(.stateMismatch, "\(strategy): unknown state '\(key)'; it keeps \(names)")
        }
        for name in names {
            guard let v = state[name] else {
                throw StrategyError(.stateMismatch, "\(strategy): state '\(name)' is missing")
            }
            guard v.count == count else {
                throw StrategyError(
                    .stateMismatch, "\(strategy): state '\(name)' has \(v.count) elements, the model has \(count)")
            }
            guard v.allSatisfy(\.isFinite) else {
                throw StrategyError(.nonFiniteValue, "\(strategy): state '\(name)' holds NaN or an infinity")
            }
        }
    }
}
