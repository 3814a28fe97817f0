import FedTensor
import Testing

@testable import FedCompress

private func randomVector(_ n: Int, _ rng: inout SeededRNG) -> [Float] {
    (0..<n).map { _ in rng.nextNormal() }
}

@Suite struct ErrorFeedbackTests {
    @Test func noneSendsTheCodecOutputOfTheInput() throws {
        var rng = SeededRNG(seed: 1)
        let x = randomVector(20, &rng)
        let codec = TopKCodec(k: 3)
        let state = ErrorFeedbackState()
        let (payload, decoded) = try ErrorFeedback.none.compress(x, codec: codec, state: state)
        #expect(payload == (try codec.encode(x)))
        #expect(decoded == (try codec.decode(payload)))
        #expect(state.residual.isEmpty && state.estimate.isEmpty && state.velocity.isEmpty)
    }

    @Test func residualIsInputPlusOldResidualMinusDecodedExactly() throws {
        var rng = SeededRNG(seed: 2)
        let n = 12
        let codec = TopKCodec(k: 3)
        let state = ErrorFeedbackState()
        var inputs = [Float](repeating: 0, count: n)
        var sent = [Float](repeating: 0, count: n)
        for round in 0..<6 {
            let x = randomVector(n, &rng)
            let old = state.residual.isEmpty ? [Float](repeating: 0, count: n) : state.residual
            let p = (0..<n).map { x[$0] + old[$0] }
            let (payload, decoded) = try ErrorFeedback.residual.compress(x, codec: codec, state: state)
            // What is sent is C(p), not C(x).
            #expect(payload == (try codec.encode(p)), "round \(round)")
            let d = decoded.densified()
            #expect(state.residual == (0..<n).map { p[$0] - d[$0] }, "round \(round)")
            // Top-K keeps values exactly: kept coordinates leave no residual.
            guard case .sparse(_, let indices, _) = decoded else {
                Issue.record("Top-K decoded densely")
                return
            }
            #expect(indices.count == 3)
            for i in indices { #expect(state.residual[Int(i)] == 0) }
            for j in 0..<n {
                inputs[j] += x[j]
                sent[j] += d[j]
            }
        }
        // Telescoping: Σ_t D(C(p_t)) + e_T = Σ_t x_t (up to float rounding of the running sums).
        for j in 0..<n {
            #expect(abs(sent[j] + state.residual[j] - inputs[j]) <= 1e-5 * max(1, abs(inputs[j])), "j=\(j)")
        }
    }

    @Test func ef21ClientAndServerEstimatesStayIdentical() throws {
        var rng = SeededRNG(seed: 3)
        let n = 16
        let codec = TopKCodec(k: 4)
        var server = EF21Server(count: n)
        let clients = [ErrorFeedbackState(), ErrorFeedbackState(), ErrorFeedbackState()]
        for round in 0..<5 {
            for (id, state) in clients.enumerated() {
                let x = randomVector(n, &rng)
                let g = state.estimate.isEmpty ? [Float](repeating: 0, count: n) : state.estimate
                let (payload, decoded) = try ErrorFeedback.ef21.compress(x, codec: codec, state: state)
                // The transmitted quantity is the difference x − g.
                #expect(payload == (try codec.encode((0..<n).map { x[$0] - g[$0] })))
                let d = decoded.densified()
                #expect(state.estimate == (0..<n).map { g[$0] + d[$0] })
                let serverEstimate = try server.receive(client: id, decoded: try codec.decode(payload))
                #expect(serverEstimate == state.estimate, "round \(round) client \(id)")
                #expect(server.estimate(of: id) == state.estimate)
            }
        }
        #expect(server.estimate(of: 99) == [Float](repeating: 0, count: n))
        let error = #expect(throws: CodecError.self) {
            try server.receive(client: 0, decoded: .dense([1, 2]))
        }
        #expect(error?.code == .countMismatch)
    }

    @Test func ef21EstimateConvergesToAConstantInput() throws {
        // With x fixed, each round sends the k largest entries of x − g, so g reaches x after ⌈n/k⌉ rounds.
        let x: [Float] = [5, -4, 3, -2, 1, 0.5]
        let state = ErrorFeedbackState()
        for _ in 0..<3 { _ = try ErrorFeedback.ef21.compress(x, codec: TopKCodec(k: 2), state: state) }
        #expect(state.estimate == x)
    }

    @Test func dgcMasksSentCoordinatesAndAccumulatesTheRestWithMomentum() throws {
        let scheme = ErrorFeedback.dgc(momentum: 0.5)
        let codec = TopKCodec(k: 1)
        let state = ErrorFeedbackState()
        // Round 1: u = 0.5·0 + [1, −3, 2] = [1, −3, 2]; v = 0 + u = [1, −3, 2].
        // Top-1 of v keeps index 1 (−3); masking zeroes u₁ and v₁: u = [1, 0, 2], v = [1, 0, 2].
        let (_, first) = try scheme.compress([1, -3, 2], codec: codec, state: state)
        #expect(first == .sparse(count: 3, indices: [1], values: [-3]))
        #expect(state.velocity == [1, 0, 2])
        #expect(state.residual == [1, 0, 2])
        // Round 2: x = [0.5, 1, −1.5]; u = 0.5·[1, 0, 2] + x = [1, 1, −0.5];
        // v = [1, 0, 2] + u = [2, 1, 1.5]. Top-1 keeps index 0 (2); masking: u = [0, 1, −0.5], v = [0, 1, 1.5].
        let (_, second) = try scheme.compress([0.5, 1, -1.5], codec: codec, state: state)
        #expect(second == .sparse(count: 3, indices: [0], values: [2]))
        #expect(state.velocity == [0, 1, -0.5])
        #expect(state.residual == [0, 1, 1.5])
    }

    @Test func dgcMasksTheNonZeroCoordinatesOfADenseDecoding() throws {
        let state = ErrorFeedbackState()
        // Identity sends v = x exactly: every non-zero coordinate counts as sent and is masked to 0;
        // without masking, u and v would both stay [0, 2, 0, −1].
        _ = try ErrorFeedback.dgc(momentum: 0.9).compress([0, 2, 0, -1], codec: IdentityCodec(), state: state)
        #expect(state.velocity == [0, 0, 0, 0])
        #expect(state.residual == [0, 0, 0, 0])
    }

    @Test func invalidUseThrows() throws {
        let state = ErrorFeedbackState()
        _ = try ErrorFeedback.residual.compress([1, 2, 3], codec: TopKCodec(k: 1), state: state)
        let mismatch = #expect(throws: CodecError.self) {
            try ErrorFeedback.residual.compress([1, 2, 3, 4], codec: TopKCodec(k: 1), state: state)
        }
        #expect(mismatch?.code == .countMismatch)
        for m: Float in [-0.1, 1.5, .nan, .infinity] {
            let bad = #expect(throws: CodecError.self) {
                try ErrorFeedback.dgc(momentum: m).compress([1], codec: TopKCodec(k: 1), state: ErrorFeedbackState())
            }
            #expect(bad?.code == .invalidParameter)
        }
        state.reset()
        _ = try ErrorFeedback.residual.compress([1, 2, 3, 4], codec: TopKCodec(k: 1), state: state)
        #expect(state.residual == [1, 2, 3, 0])
    }
}
