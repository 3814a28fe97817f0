/// How a client compensates for what a lossy codec C (with decoder D) drops, across rounds.
///
/// ```swift
/// let state = ErrorFeedbackState()  // one per client, kept between rounds
/// let (payload, sent) = try ErrorFeedback.residual.compress(gradient, codec: TopKCodec(ratio: 0.01),
///                                                           context: context, state: state)
/// ```
/// `compress` returns the payload to transmit and its decoding (what the server will see).
public enum ErrorFeedback: Sendable, Equatable {
    /// No memory: send C(x).
    case none
    /// Residual error feedback (Seide et al. 2014; Karimireddy et al. 2019, EF-SGD):
    /// p = x + e; send C(p); e ← p − D(C(p)).
    case residual
    /// EF21 (Richtárik et al. 2021): the client keeps its last estimate g;
    /// send c = C(x − g); g ← g + D(c).
    ///
    /// The transmitted quantity is the *difference* x − g, not x: the server must keep its own
    /// per-client copy of g and add D(c) to it (`EF21Server`); that g is the client's update.
    case ef21
    /// Deep Gradient Compression (Lin et al. 2018), momentum correction and momentum-factor
    /// masking: u ← m·u + x; v ← v + u; send C(v); then u_j = v_j = 0 for every coordinate j the
    /// decoded payload contains (non-zero entries of a dense decoding, the indices of a sparse one).
    /// `momentum` m must be finite and in [0, 1].
    case dgc(momentum: Float)

    /// Compresses `x` under this scheme, updating `state`.
    /// - Returns: the payload to transmit and its decoding: D(C(x)) for `.none`, D(C(p)) for
    ///   `.residual`, D(C(x − g)) — the difference — for `.ef21`, D(C(v)) for `.dgc`.
    /// - Throws: the codec's errors; `CodecError.countMismatch` if `state` was used with another
    ///   length or the decoding has the wrong length; `invalidParameter` for a bad momentum.
    public func compress(
        _ x: UnsafeBufferPointer<Float>, codec: any Codec, context: CodecContext, state: ErrorFeedbackState
    ) throws -> (payload: [UInt8], decoded: DecodedUpdate) {
        let n = x.count
        switch self {
        case .none:
            let payload = try codec.encode(x, context: context)
            let decoded = try Self.decode(payload, codec: codec, count: n)
            return (payload, decoded)

        case .residual:
            try ErrorFeedbackState.prepare(&state.residual, count: n, name: "residual")
            // p is built in place of e, then D(C(p)) is subtracted from it: e ← p − D(C(p)).
            state.residual.withUnsafeMutableBufferPointer { e in
                for j in 0..<n { e[j] += x[j] }
            }
            let payload = try state.residual.withUnsafeBufferPointer { try codec.encode($0, context: context) }
            let decoded = try Self.decode(payload, codec: codec, count: n)
            Self.add(decoded, to: &state.residual, scale: -1)
            return (payload, decoded)

        case .ef21:
            try ErrorFeedbackState.prepare(&state.estimate, count: n, name: "estimate")
            var difference = [Float](repeating: 0, count: n)
            difference.withUnsafeMutableBufferPointer { d in
                state.estimate.withUnsafeBufferPointer { g in
                    for j in 0..<n { d[j] = x[j] - g[j] }
                }
            }
            let payload = try difference.withUnsafeBufferPointer { try codec.encode($0, context: context) }
            let decoded = try Self.decode(payload, codec: codec, count: n)
            Self.add(decoded, to: &state.estimate, scale: 1)
            return (payload, decoded)

        case .dgc(let m):
            guard m.isFinite, m >= 0, m <= 1 else {
                throw CodecError(.invalidParameter, "dgc momentum must be finite and in [0, 1], got \(m)")
            }
            try ErrorFeedbackState.prepare(&state.velocity, count: n, name: "velocity")
            try ErrorFeedbackState.prepare(&state.residual, count: n, name: "accumulator")
            state.velocity.withUnsafeMutableBufferPointer { u in
                state.residual.withUnsafeMutableBufferPointer { v in
                    for j in 0..<n {
                        u[j] = m * u[j] + x[j]
                        v[j] += u[j]
                    }
                }
            }
            let payload = try state.residual.withUnsafeBufferPointer { try codec.encode($0, context: context) }
            let decoded = try Self.decode(payload, codec: codec, count: n)
            state.velocity.withUnsafeMutableBufferPointer { u in
                state.residual.withUnsafeMutableBufferPointer { v in
                    switch decoded {
                    case .dense(let values):
                        values.withUnsafeBufferPointer { d in
                            for j in 0..<n where d[j] != 0 {
                                u[j] = 0
                                v[j] = 0
                            }
                        }
                    case .sparse(_, let indices, _):
                        for i in indices {
                            u[Int(i)] = 0
                            v[Int(i)] = 0
                        }
                    }
                }
            }
            return (payload, decoded)
        }
    }

    /// Compresses an array; see `compress(_:codec:context:state:)`.
    public func compress(
        _ x: [Float], codec: any Codec, context: CodecContext = CodecContext(), state: ErrorFeedbackState
    ) throws -> (payload: [UInt8], decoded: DecodedUpdate) {
        try x.withUnsafeBufferPointer { try compress($0, codec: codec, context: context, state: state) }
    }

    /// Decodes and checks the length, so the updates below stay in bounds.
    private static func decode(_ payload: [UInt8], codec: any Codec, count n: Int) throws -> DecodedUpdate {
        let decoded = try codec.decode(payload)
        guard decoded.count == n else {
            throw CodecError(.countMismatch, "codec '\(codec.name)' decoded \(decoded.count) elements, sent \(n)")
        }
        if case .sparse(_, let indices, let values) = decoded {
            guard indices.count == values.count, indices.allSatisfy({ Int($0) < n }) else {
                throw CodecError(.indexOutOfRange, "codec '\(codec.name)' decoded an index outside 0..<\(n)")
            }
        }
        return decoded
    }

    /// a ← a + scale · decoded (only the kept coordinates of a sparse decoding).
    static func add(_ decoded: DecodedUpdate, to a: inout [Float], scale: Float) {
        a.withUnsafeMutableBufferPointer { a in
            switch decoded {
            case .dense(let values):
                values.withUnsafeBufferPointer { d in
                    for j in 0..<d.count { a[j] += scale * d[j] }
                }
            case .sparse(_, let indices, let values):
                indices.withUnsafeBufferPointer { idx in
                    values.withUnsafeBufferPointer { d in
                        for i in 0..<idx.count { a[Int(idx[i])] += scale * d[i] }
                    }
                }
            }
        }
    }
}
