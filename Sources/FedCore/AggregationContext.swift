/// What a strategy knows about the round it aggregates.
public struct AggregationContext: Sendable {
    /// The round being aggregated, counted from 1.
    public var round: Int
    /// Number of clients in the federation (N); SCAFFOLD scales its control update by |S| / N.
    public var totalClients: Int

    /// A context for `round` of a federation of `totalClients` clients.
    public init(round: Int, totalClients: Int) {
        self.round = round
        self.totalClients = totalClients
    }
}
