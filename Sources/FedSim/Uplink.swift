import FedCompress
import FedTensor

/// What the simulator keeps for one client between rounds when updates are compressed: the
/// client's error-feedback memory and, for EF21, the server's copy of the client's estimate g
/// (the server's side, kept here so that each client's state has a single owner).
/// Created on the client's first selection; touched by one worker at a time.
final class ClientMemory: @unchecked Sendable {
    let feedback = ErrorFeedbackState()
    var serverEstimate: [Float] = []
}

/// How one client's update goes on the wire in one round.
struct Uplink: @unchecked Sendable {
    let codec: any Codec
    let feedback: ErrorFeedback
    let memory: ClientMemory
    let context: CodecContext
    /// Report which coordinates the payload contained (for overlap-weighted averaging).
    let reportsCoverage: Bool

    /// Compresses `delta` (updating the client's memory), then does what the server does on receipt:
    /// decodes the payload into `received` (dense, zeros where a sparse payload kept nothing) and,
    /// for EF21, adds the server's estimate of this client and keeps the sum as the new estimate.
    /// - Returns: the payload size and, if `reportsCoverage`, the coordinates the payload contained
    ///   (nil when it contained every one).
    func send(
        _ delta: UnsafeBufferPointer<Float>, into received: UnsafeMutableBufferPointer<Float>
    ) throws
        -> (bytes: Int, coverage: [UInt32]?)
    {
        let (payload, decoded) = try feedback.compress(delta, codec: codec, context: context, state: memory.feedback)
        guard decoded.count == received.count else {
            throw CodecError(
                .countMismatch, "payload decodes to \(decoded.count) elements, the model has \(received.count)")
        }
        var coverage: [UInt32]?
        switch decoded {
        case .dense(let v):
            v.withUnsafeBufferPointer { received.baseAddress!.update(from: $0.baseAddress!, count: v.count) }
        case .sparse(_, let indices, let values):
            received.update(repeating: 0)
            for (i, v) in zip(indices, values) { received[Int(i)] = v }
            if reportsCoverage { coverage = indices }
        }
        // Lossless and half-precision codecs carry NaN and infinity through (fp16 overflows to
        // infinity above 65,504): the server never aggregates a non-finite update.
        guard VectorKernels.allFinite(UnsafeBufferPointer(received)) else {
            throw PayloadError("decoded update contains NaN or infinite values")
        }
        if case .ef21 = feedback {
            if memory.serverEstimate.isEmpty { memory.serverEstimate = [Float](repeating: 0, count: received.count) }
            memory.serverEstimate.withUnsafeMutableBufferPointer { g in
                for j in 0..<g.count {
                    g[j] += received[j]
                    received[j] = g[j]
                }
            }
            coverage = nil  // the server's estimate g covers every coordinate
        }
        return (payload.count, coverage)
    }
}
