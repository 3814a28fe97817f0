/// A server-side federated-learning algorithm: turns the clients' updates into a new global model.
///
/// A strategy owns its server state (momentum, moment estimates, control variate) and updates the
/// flat global parameters in place. Updates are aggregated in the order given (callers sort them
/// by client id) with `Double` accumulators, so equal inputs give bit-identical results.
///
/// Every update is validated before anything is written: if `aggregate` throws a ``StrategyError``,
/// neither `global` nor ``state`` has changed. The strategy never drops a client on its own; the
/// caller decides whether to remove the offending update (the error names its client id) and
/// aggregate again.
///
/// ```swift
/// let strategy = try StrategyFactory.makeStrategy(name: "fedavgm", parameters: ["momentum": 0.9])
/// try strategy.aggregate(global: model.parameters.values, updates: updates,
///                        context: ServerContext(round: 1, totalClients: 100))
/// ```
public protocol Strategy: AnyObject {
    /// The name configs use for this strategy, such as "fedavg".
    var name: String { get }

    /// Applies one round's updates to `global`.
    /// - Throws: ``StrategyError`` if `updates` is empty or any update is invalid for this strategy;
    ///   `global` and ``state`` are then unchanged.
    func aggregate(global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: ServerContext) throws

    /// The server state by name, each vector in the layout of the global parameters; empty before the first round.
    var state: [String: [Float]] { get }
}
