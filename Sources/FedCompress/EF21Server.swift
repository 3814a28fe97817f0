/// The server side of `ErrorFeedback.ef21`: keeps each client's estimate g_i and adds to it the
/// decoded difference D(c_i) the client sent, g_i ← g_i + D(c_i), mirroring the client's own update.
///
/// ```swift
/// var server = EF21Server(count: n)
/// let g = try server.receive(client: 7, decoded: try codec.decode(payload))
/// ```
/// A client the server has not heard from starts at g = 0, as its `ErrorFeedbackState` does.
public struct EF21Server: Sendable {
    /// Length of every estimate.
    public let count: Int
    public private(set) var estimates: [Int: [Float]]

    public init(count: Int) {
        self.count = count
        self.estimates = [:]
    }

    /// Client `client`'s current estimate g (zeros if it has sent nothing).
    public func estimate(of client: Int) -> [Float] {
        estimates[client] ?? [Float](repeating: 0, count: count)
    }

    /// Applies g ← g + D(c) for `client` and returns the new g.
    /// - Throws: `CodecError.countMismatch` for a decoding of another length, `indexOutOfRange` for
    ///   a sparse index ≥ `count`.
    @discardableResult
    public mutating func receive(client: Int, decoded: DecodedUpdate) throws -> [Float] {
        guard decoded.count == count else {
            throw CodecError(.countMismatch, "EF21 difference has \(decoded.count) elements, estimates \(count)")
        }
        if case .sparse(_, let indices, let values) = decoded {
            guard indices.count == values.count, indices.allSatisfy({ Int($0) < count }) else {
                throw CodecError(.indexOutOfRange, "EF21 difference has an index outside 0..<\(count)")
            }
        }
        var g = estimates.removeValue(forKey: client) ?? [Float](repeating: 0, count: count)
        ErrorFeedback.add(decoded, to: &g, scale: 1)
        estimates[client] = g
        return g
    }

    /// Sets `client`'s estimate (as read from a checkpoint).
    /// - Throws: `CodecError.countMismatch` for an estimate of another length.
    public mutating func restore(client: Int, estimate: [Float]) throws {
        guard estimate.count == count else {
            throw CodecError(.countMismatch, "EF21 estimate has \(estimate.count) elements, expected \(count)")
        }
        estimates[client] = estimate
    }

    /// Forgets `client` (its estimate returns to zero).
    public mutating func remove(client: Int) {
        estimates[client] = nil
    }
}
