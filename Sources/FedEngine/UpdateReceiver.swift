import FedCompress
import FedTensor

/// The server's receive path for one client's reply: decode the payload, check it, and turn it
/// into the dense update the strategy aggregates.
///
/// Checks: the payload decodes (dense format, or the codec of the client's uplink plan) to one
/// value per parameter, every value finite, the uploaded vectors exactly those the strategy
/// expects, each of its length and finite,
/// and, when set, the update's L2 norm within `maximumNorm`. Under EF21 the decoding is the
/// difference from the server's estimate of this client, which is advanced (g ← g + D(c)) and is
/// the update.
struct UpdateReceiver {
    let parameterCount: Int
    /// Report the coordinates a sparse payload contained (for overlap-weighted averaging).
    let reportsCoverage: Bool
    /// Reject updates whose L2 norm is larger (nil: no bound).
    let maximumNorm: Double?
    /// The server's EF21 estimates, one per client that has sent one.
    var estimates: EF21Server

    init(parameterCount: Int, reportsCoverage: Bool, maximumNorm: Double?) {
        self.parameterCount = parameterCount
        self.reportsCoverage = reportsCoverage
        self.maximumNorm = maximumNorm
        estimates = EF21Server(count: parameterCount)
    }

    /// Decodes `reply` into `received`.
    /// - Returns: the coordinates a sparse payload contained when coverage is reported (nil: all).
    /// - Throws: why the update cannot be accepted.
    mutating func receive(
        _ reply: ClientReply, plan: UplinkPlan?, uploads expected: [String: Int],
        into received: UnsafeMutableBufferPointer<Float>
    ) throws -> [UInt32]? {
        precondition(received.count == parameterCount, "one received value per parameter")
        if let failure = reply.failure { throw PayloadError(failure) }
        var coverage: [UInt32]?
        if let plan {
            let decoded = try plan.codec.decode(reply.payload)
            guard decoded.count == parameterCount else {
                throw CodecError(
                    .countMismatch, "payload decodes to \(decoded.count) elements, the model has \(parameterCount)")
            }
            switch decoded {
            case .dense(let v):
                v.withUnsafeBufferPointer { received.baseAddress!.update(from: $0.baseAddress!, count: v.count) }
            case .sparse(_, let indices, let values):
                guard indices.count == values.count, indices.allSatisfy({ Int($0) < parameterCount }) else {
                    throw CodecError(.indexOutOfRange, "payload has an index outside 0..<\(parameterCount)")
                }
                received.update(repeating: 0)
                for (i, v) in zip(indices, values) { received[Int(i)] = v }
                if reportsCoverage { coverage = indices }
            }
            // Lossless and half-precision codecs carry NaN and infinity through (fp16 overflows to
            // infinity above 65,504): the server never aggregates a non-finite update.
            guard VectorKernels.allFinite(UnsafeBufferPointer(received)) else {
                throw PayloadError("decoded update contains NaN or infinite values")
            }
            if case .ef21 = plan.feedback {
                let g = try estimates.receive(client: reply.client, decoded: decoded)
                g.withUnsafeBufferPointer { received.baseAddress!.update(from: $0.baseAddress!, count: g.count) }
                coverage = nil  // the server's estimate g covers every coordinate
            }
        } else {
            try IdentityCodec.decode(reply.payload, into: received)
        }
        guard Set(reply.upload.keys) == Set(expected.keys) else {
            throw PayloadError(
                "the update uploads \(reply.upload.keys.sorted()); the strategy expects \(expected.keys.sorted())")
        }
        for name in reply.upload.keys.sorted() {
            let v = reply.upload[name]!
            guard v.count == expected[name]! else {
                throw PayloadError("uploaded \(name) has \(v.count) elements, expected \(expected[name]!)")
            }
            guard v.withUnsafeBufferPointer({ VectorKernels.allFinite($0) }) else {
                throw PayloadError("uploaded \(name) contains NaN or infinite values")
            }
        }
        if let maximumNorm {
            var sum = 0.0
            for x in received { sum += Double(x) * Double(x) }
            guard sum.squareRoot() <= maximumNorm else {
                throw PayloadError("update norm \(sum.squareRoot()) is above the bound \(maximumNorm)")
            }
        }
        return coverage
    }
}

/// A malformed or hostile payload.
public struct PayloadError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
