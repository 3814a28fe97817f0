import FedCompress

/// Where the round engine's clients are: in-process workers on a virtual clock (the simulator's
/// `SimulatedClients`), or sessions over the network. The engine decides who takes part and what
/// they receive; the pool runs their local updates and says when each finished.
///
/// A pool is called from one thread at a time; it may run the clients of a round concurrently.
public protocol ClientPool: AnyObject {
    /// The clients of `selected` (sorted ids) that can take part in `round` (reachable, not dropped
    /// out), in the same order.
    func available(_ selected: [Int], round: Int) -> [Int]

    /// What the pool knows of `client`'s uplink, for ratio policies that size each client's update
    /// to its link.
    func link(of client: Int) -> ClientLink

    /// Runs the local update of every task of `request` and returns the replies of the clients
    /// that answered (in any order; at most one per task). A client that vanished has no reply.
    func train(_ request: RoundRequest) throws -> [ClientReply]

    /// Tells the pool which replies of `round` the server accepted (so that clients keep their new
    /// rule state only then), and why it rejected the others (the receive path's error, or late).
    /// The default does nothing.
    func finished(round: Int, accepted: [Int], rejected: [Int: String])
}

extension ClientPool {
    public func finished(round: Int, accepted: [Int], rejected: [Int: String]) {}
}

/// What the engine sends to the clients of one round.
public struct RoundRequest: Sendable {
    /// The round, counted from 1.
    public var round: Int
    /// The model the clients start from, as they hold it: the global model, or the clients' copy
    /// of it under downlink compression.
    public var model: [Float]
    /// The strategy's broadcast vectors (``FedCore/Strategy/broadcast(parameterCount:)``).
    public var vectors: [String: [Float]]
    /// One task per client, in client order.
    public var tasks: [ClientTask]
}

/// One client's part of a round.
public struct ClientTask: Sendable {
    public var client: Int
    /// Bytes the client downloads this round (model or broadcasts missed, plus the strategy's vectors).
    public var downloadBytes: Int
    /// The per-client state the strategy's rule kept from the client's last accepted round.
    public var state: [String: [Float]]
    /// How the client encodes its update; nil for dense float32.
    public var uplink: UplinkPlan?
}

/// How one client's update goes on the wire in one round: the codec (its keep ratio chosen by the
/// ratio policy), the error feedback the client applies, and the codec's random stream.
public struct UplinkPlan: Sendable {
    public var codec: any Codec
    public var feedback: ErrorFeedback
    public var context: CodecContext
    /// The keep ratio the ratio policy chose (nil: the codec's own), for clients that build the
    /// codec themselves from the experiment's `compression.uplink`.
    public var ratio: Double?

    public init(codec: any Codec, feedback: ErrorFeedback, context: CodecContext, ratio: Double? = nil) {
        self.codec = codec
        self.feedback = feedback
        self.context = context
        self.ratio = ratio
    }
}

/// What one client sends back after its local update.
public struct ClientReply: Sendable {
    public var client: Int
    /// The encoded update: the codec's payload, or the dense format when the task had no uplink
    /// plan. Empty when the client could not encode (see `failure`).
    public var payload: [UInt8]
    /// The vectors the strategy's rule uploads (``FedCore/ClientRuleOutput/upload``).
    public var upload: [String: [Float]]
    /// The rule's new per-client state, kept if the update is accepted.
    public var state: [String: [Float]]
    /// Bytes the client sent: the payload plus the uploaded vectors.
    public var uploadBytes: Int
    /// Training samples the client holds (n_i).
    public var sampleCount: Int
    /// Samples processed in local training (epochs × n_i, or the step budget's batches).
    public var samplesProcessed: Int
    public var steps: Int
    public var trainLoss: Double
    /// Seconds from the start of the round until the server had the reply: virtual seconds in
    /// the simulator, real ones on the network. Deadlines and over-selection go by it.
    public var finishTime: Double
    /// Wall seconds of the local training itself.
    public var computeSeconds: Double
    /// Why the client could not produce an update (a non-finite update, a codec error), if so.
    public var failure: String?

    public init(
        client: Int, payload: [UInt8], upload: [String: [Float]] = [:], state: [String: [Float]] = [:],
        uploadBytes: Int, sampleCount: Int, samplesProcessed: Int, steps: Int, trainLoss: Double,
        finishTime: Double = 0, computeSeconds: Double = 0, failure: String? = nil
    ) {
        self.client = client
        self.payload = payload
        self.upload = upload
        self.state = state
        self.uploadBytes = uploadBytes
        self.sampleCount = sampleCount
        self.samplesProcessed = samplesProcessed
        self.steps = steps
        self.trainLoss = trainLoss
        self.finishTime = finishTime
        self.computeSeconds = computeSeconds
        self.failure = failure
    }
}
