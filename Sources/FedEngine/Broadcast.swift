import FedCompress

/// Compressed server → client broadcast (downlink) with a server-side residual.
///
/// Every round the server compresses its model change since the last broadcast,
/// Δ_t = x_t − x_{t−1}, under the configured error feedback (`residual`: p = Δ_t + e,
/// send C(p), e ← p − D(C(p))), and every client's copy of the model advances by the decoding:
/// x̂_t = x̂_{t−1} + D(C(·)). Clients train from x̂_t; the server keeps the exact model x_t.
/// With a residual, x̂_t = x_t − e_t: nothing the codec drops is lost, only delayed.
///
/// Bytes: a client selected at round t that last received the model at round s (0 = the initial
/// model, which every client builds from the shared seed) downloads the broadcasts s+1…t, or the
/// dense float32 model if that is smaller.
final class Broadcast {
    let codec: TensorwiseCodec
    let feedback: ErrorFeedback
    private(set) var state = ErrorFeedbackState()
    private var previous: [Float]
    /// The model as the clients hold it (owned; freed with the broadcast).
    let view: UnsafeMutableBufferPointer<Float>
    /// `sent[t]` = bytes of the broadcasts of rounds 1…t.
    private var sent: [Int] = [0]
    private var lastReceived: [Int]
    private let seed: UInt64

    init(
        codec: TensorwiseCodec, feedback: ErrorFeedback, initial: UnsafeBufferPointer<Float>, clients: Int, seed: UInt64
    ) {
        self.codec = codec
        self.feedback = feedback
        previous = Array(initial)
        view = .allocate(capacity: initial.count)
        _ = view.initialize(from: initial)
        lastReceived = [Int](repeating: 0, count: clients)
        self.seed = seed
    }

    /// Compresses the change of `global` since the last broadcast and advances the clients' copy.
    /// - Returns: the broadcast payload's size in bytes.
    func send(round: Int, global: UnsafeBufferPointer<Float>) throws -> Int {
        precondition(sent.count == round, "broadcasts must be sent once per round, in order")
        var change = [Float](repeating: 0, count: global.count)
        for j in 0..<global.count {
            change[j] = global[j] - previous[j]
            previous[j] = global[j]
        }
        let context = CodecContext(seed: seed, stream: "server/round/\(round)/downlink", key: "server/downlink")
        let (payload, decoded) = try feedback.compress(change, codec: codec, context: context, state: state)
        switch decoded {
        case .dense(let d):
            for j in 0..<d.count { view[j] += d[j] }
        case .sparse(_, let indices, let values):
            for (i, v) in zip(indices, values) { view[Int(i)] += v }
        }
        sent.append(sent[round - 1] + payload.count)
        return payload.count
    }

    deinit { view.deallocate() }

    /// Saves what the broadcast remembers under `broadcast/`.
    func save(into checkpoint: inout Checkpoint) {
        checkpoint.vectors["broadcast/previous"] = previous
        checkpoint.vectors["broadcast/view"] = Array(view)
        for (name, v) in [("residual", state.residual), ("estimate", state.estimate), ("velocity", state.velocity)]
        where !v.isEmpty {
            checkpoint.vectors["broadcast/feedback/" + name] = v
        }
        checkpoint.setIntegers("broadcast/sent", sent)
        checkpoint.setIntegers("broadcast/last_received", lastReceived)
    }

    /// Restores what ``save(into:)`` saved.
    func restore(from checkpoint: Checkpoint) throws {
        let n = view.count
        previous = try checkpoint.vector("broadcast/previous", count: n)
        let v = try checkpoint.vector("broadcast/view", count: n)
        _ = view.update(fromContentsOf: v)
        let feedback = checkpoint.vectors(under: "broadcast/feedback/")
        for v in feedback.values where v.count != n {
            throw CheckpointError("the checkpoint's broadcast residual has \(v.count) values, expected \(n)")
        }
        let sent = try checkpoint.integers("broadcast/sent")
        let received = try checkpoint.integers("broadcast/last_received")
        guard !sent.isEmpty, received.count == lastReceived.count, received.allSatisfy({ $0 >= 0 && $0 < sent.count })
        else {
            throw CheckpointError("the checkpoint's broadcast bookkeeping is inconsistent")
        }
        state = ErrorFeedbackState(
            residual: feedback["residual"] ?? [], estimate: feedback["estimate"] ?? [],
            velocity: feedback["velocity"] ?? [])
        self.sent = sent
        lastReceived = received
    }

    /// Bytes `client` downloads at `round` to hold the current model, marking it as up to date.
    func download(client: Int, round: Int) -> Int {
        let missed = sent[round] - sent[lastReceived[client]]
        lastReceived[client] = round
        return min(missed, IdentityCodec.size(count: view.count))
    }
}
