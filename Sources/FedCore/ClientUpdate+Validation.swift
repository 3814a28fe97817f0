extension ClientUpdate {
    /// Checks what can be checked without reading the vectors: a non-empty list, distinct ids, lengths,
    /// sample counts and, where required, local steps and the named upload vectors. Finiteness is checked while
    /// accumulating (``DeltaAccumulator``), so every vector is read once.
    static func validate(
        _ updates: [ClientUpdate], parameterCount: Int, requireLocalSteps: Bool = false,
        requireVectors: [String] = []
    ) throws {
        guard !updates.isEmpty else {
            throw StrategyError(.noUpdates, "no client updates to aggregate; a round needs at least one")
        }
        var seen = Set<Int>(minimumCapacity: updates.count)
        for update in updates {
            let id = update.clientID
            guard seen.insert(id).inserted else {
                throw StrategyError(.duplicateClient, "client \(id) sent more than one update", clientID: id)
            }
            guard update.delta.count == parameterCount else {
                throw StrategyError(
                    .lengthMismatch,
                    "client \(id): delta has \(update.delta.count) elements, the model has \(parameterCount)",
                    clientID: id)
            }
            guard update.sampleCount > 0 else {
                throw StrategyError(
                    .invalidSampleCount, "client \(id): sample count is \(update.sampleCount), must be positive",
                    clientID: id)
            }
            if requireLocalSteps && update.localSteps <= 0 {
                throw StrategyError(
                    .invalidLocalSteps, "client \(id): local step count is \(update.localSteps), must be positive",
                    clientID: id)
            }
            for name in requireVectors {
                guard let vector = update.vectors[name] else {
                    throw StrategyError(
                        .missingVector, "client \(id): the strategy needs the vector '\(name)' and the update has none",
                        clientID: id)
                }
                guard vector.count == parameterCount else {
                    throw StrategyError(
                        .lengthMismatch,
                        "client \(id): \(name) has \(vector.count) elements, the model has \(parameterCount)",
                        clientID: id)
                }
            }
        }
    }

    /// p_i = n_i / Σ_j n_j, in update order.
    static func sampleWeights(_ updates: [ClientUpdate]) -> [Double] {
        var total = 0.0
        for update in updates { total += Double(update.sampleCount) }
        return updates.map { Double($0.sampleCount) / total }
    }

    /// The error for the first update whose `vector` holds NaN or an infinity, naming the client and index.
    static func nonFiniteError(
        _ updates: [ClientUpdate], _ vector: KeyPath<ClientUpdate, [Float]>, what: String
    ) -> StrategyError {
        for update in updates {
            if let index = update[keyPath: vector].firstIndex(where: { !$0.isFinite }) {
                let value = update[keyPath: vector][index]
                return StrategyError(
                    .nonFiniteValue, "client \(update.clientID): \(what) holds \(value) at index \(index)",
                    clientID: update.clientID)
            }
        }
        return StrategyError(.nonFiniteValue, "the weighted sum of the \(what)s overflowed")
    }
}
