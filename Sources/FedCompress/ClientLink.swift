/// One selected client's uplink as a ratio policy sees it.
public struct ClientLink: Sendable, Equatable {
    /// Uplink bandwidth `Bᵢ` in bit/s (finite, > 0).
    public var bandwidth: Double
    /// One-way latency `Lᵢ` in seconds (finite, ≥ 0).
    public var latency: Double

    public init(bandwidth: Double, latency: Double = 0) {
        self.bandwidth = bandwidth
        self.latency = latency
    }

    /// Throws `invalidParameter` unless `bandwidth` is finite and positive and `latency` finite and ≥ 0.
    public func validate() throws {
        guard bandwidth.isFinite, bandwidth > 0 else {
            throw CodecError(.invalidParameter, "client bandwidth must be finite and > 0 bit/s, got \(bandwidth)")
        }
        guard latency.isFinite, latency >= 0 else {
            throw CodecError(.invalidParameter, "client latency must be finite and ≥ 0 s, got \(latency)")
        }
    }
}
