/// What one client sends back after a round of local training.
///
/// `delta` is the client's final weights minus the global weights it started from, in the flat
/// layout of the model's `ParameterSet`.
public struct ClientUpdate: Sendable {
    /// Identifies the client; aggregation order is the order of the updates array, which callers sort by this id.
    public var clientID: Int
    /// Final local weights minus the global weights the client started from.
    public var delta: [Float]
    /// Number of training samples the client holds (n_i); weights the average in most strategies.
    public var sampleCount: Int
    /// Number of local SGD steps taken (τ_i); FedNova normalises by it.
    public var localSteps: Int
    /// Vectors the strategy's client rule uploads with the delta, by name, each in the layout of the
    /// parameters (SCAFFOLD: "control_delta", Δc_i = c_i⁺ − c_i); empty for most algorithms.
    public var vectors: [String: [Float]]
    /// Mean training loss over the round.
    public var trainLoss: Double
    /// Size of the encoded upload in bytes.
    public var payloadBytes: Int
    /// Further per-client measurements, by name.
    public var metrics: [String: Double]

    /// An update with the given fields; the optional ones default to empty.
    public init(
        clientID: Int, delta: [Float], sampleCount: Int, localSteps: Int = 0, vectors: [String: [Float]] = [:],
        trainLoss: Double = 0, payloadBytes: Int = 0, metrics: [String: Double] = [:]
    ) {
        self.clientID = clientID
        self.delta = delta
        self.sampleCount = sampleCount
        self.localSteps = localSteps
        self.vectors = vectors
        self.trainLoss = trainLoss
        self.payloadBytes = payloadBytes
        self.metrics = metrics
    }
}
