import Testing

@testable import FedCore

/// Calls `body` with buffers over the given arrays, as the local trainer would.
private func withBuffers<R>(
    _ values: [Float], _ body: (UnsafeBufferPointer<Float>) -> R
) -> R {
    values.withUnsafeBufferPointer(body)
}

@Suite struct ClientRuleTests {
    @Test func plainRuleChangesNothing() {
        let rule = PlainClientRule()
        var gradients: [Float] = [1, -2]
        withBuffers([3, 4]) { rule.beginRound(global: $0) }
        withBuffers([5, 6]) { p in gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: p) }
        }
        #expect(gradients == [1, -2])
        #expect(withBuffers([5, 6]) { rule.endRound(parameters: $0, steps: 3, learningRate: 0.1) } == .none)
    }

    @Test func proximalRuleAddsMuTimesDistanceToGlobal() {
        // g + μ(w − x) = [0.1, 0.2, 0.3] + 0.5·([2, −1, 0.5] − [1, −2, 0.5]) = [0.6, 0.7, 0.3]
        let rule = ProximalClientRule(mu: 0.5)
        withBuffers([1, -2, 0.5]) { rule.beginRound(global: $0) }
        var gradients: [Float] = [0.1, 0.2, 0.3]
        withBuffers([2, -1, 0.5]) { w in
            gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: w) }
        }
        #expect(gradients == [0.6, 0.7, 0.3])
        #expect(withBuffers([2, -1, 0.5]) { rule.endRound(parameters: $0, steps: 1, learningRate: 0.1) } == .none)
    }

    @Test func proximalGradientMatchesFiniteDifferencesOfTheProximalTerm() {
        // Proximal term P(w) = (μ/2)‖w − x‖²; with zero loss gradient the rule must produce ∂P/∂w.
        let mu = 0.3
        let x: [Float] = [0.5, -1.25, 2]
        let w: [Float] = [1.5, 0.25, -0.5]
        func term(_ w: [Double]) -> Double {
            mu / 2 * zip(w, x).reduce(0) { $0 + ($1.0 - Double($1.1)) * ($1.0 - Double($1.1)) }
        }
        let rule = ProximalClientRule(mu: Float(mu))
        withBuffers(x) { rule.beginRound(global: $0) }
        var gradients: [Float] = [0, 0, 0]
        withBuffers(w) { p in gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: p) } }
        let h = 1e-4
        for j in 0..<3 {
            var plus = w.map(Double.init)
            var minus = plus
            plus[j] += h
            minus[j] -= h
            let numeric = (term(plus) - term(minus)) / (2 * h)
            #expect(abs(Double(gradients[j]) - numeric) < 1e-5)
        }
    }

    @Test func proximalRuleReanchorsEachRound() {
        let rule = ProximalClientRule(mu: 1)
        withBuffers([0, 0]) { rule.beginRound(global: $0) }
        withBuffers([1, 1]) { rule.beginRound(global: $0) }
        var gradients: [Float] = [0, 0]
        withBuffers([3, 0]) { w in gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: w) }
        }
        #expect(gradients == [2, -1])
    }

    @Test func scaffoldRuleCorrectsGradientsAndUpdatesTheClientControl() throws {
        // c = [0.5, −1], c_i = [0.25, 0.5]: every step g += c − c_i = [0.25, −1.5]
        let rule = ScaffoldClientRule(serverControl: [0.5, -1], clientControl: [0.25, 0.5])
        withBuffers([1, 2]) { rule.beginRound(global: $0) }
        var gradients: [Float] = [1, 1]
        withBuffers([1, 2]) { w in gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: w) }
        }
        #expect(gradients == [1.25, -0.5])
        // x = [1, 2], y = [0, 3], K = 4, η_l = 0.125: (x − y)/(K η_l) = [1, −1]/0.5 = [2, −2]
        // c_i⁺ = c_i − c + [2, −2] = [0.25 − 0.5 + 2, 0.5 + 1 − 2] = [1.75, −0.5]; Δc = c_i⁺ − c_i = [1.5, −1]
        let output = withBuffers([0, 3]) { rule.endRound(parameters: $0, steps: 4, learningRate: 0.125) }
        #expect(output.upload == ["control_delta": [1.5, -1]])
        #expect(output.state == ["control": [1.75, -0.5]])
        #expect(rule.clientControl == [1.75, -0.5])
    }

    @Test func scaffoldRuleTreatsEmptyControlsAsZero() {
        // c = c_i = 0: no correction; c_i⁺ = (x − y)/(K η_l) = ([1, 1] − [0.5, 2])/(2·0.5) = [0.5, −1]
        let rule = ScaffoldClientRule()
        withBuffers([1, 1]) { rule.beginRound(global: $0) }
        var gradients: [Float] = [3, 4]
        withBuffers([1, 1]) { w in gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: w) }
        }
        #expect(gradients == [3, 4])
        let output = withBuffers([0.5, 2]) { rule.endRound(parameters: $0, steps: 2, learningRate: 0.5) }
        #expect(output.upload == ["control_delta": [0.5, -1]])
        #expect(rule.clientControl == [0.5, -1])
        #expect(rule.serverControl == [0, 0])
    }

    @Test func scaffoldRuleKeepsTheControlAfterZeroSteps() {
        let rule = ScaffoldClientRule(serverControl: [1, 1], clientControl: [2, 3])
        withBuffers([0, 0]) { rule.beginRound(global: $0) }
        let output = withBuffers([0, 0]) { rule.endRound(parameters: $0, steps: 0, learningRate: 0.1) }
        #expect(output.upload == ["control_delta": [0, 0]])
        #expect(output.state == ["control": [2, 3]])
        #expect(rule.clientControl == [2, 3])
    }

    @Test func scaffoldRoundTripFromClientRulesToServerControl() throws {
        // Two clients' Δc_i from their rules feed the server: N = 2, c = 0 + (1/2)(Δc_1 + Δc_2).
        let first = ScaffoldClientRule()
        let second = ScaffoldClientRule()
        withBuffers([0, 0]) { first.beginRound(global: $0) }
        withBuffers([0, 0]) { second.beginRound(global: $0) }
        // Δc_1 = (x − y_1)/(K η_l) = [−1, 1]/(1·1) ; Δc_2 = [0, −2]/(2·0.5) = [0, −2]
        let c1 = withBuffers([1, -1]) { first.endRound(parameters: $0, steps: 1, learningRate: 1) }.upload[
            "control_delta"]!
        let c2 = withBuffers([0, 2]) { second.endRound(parameters: $0, steps: 2, learningRate: 0.5) }.upload[
            "control_delta"]!
        let server = Scaffold()
        var global: [Float] = [0, 0]
        try global.withUnsafeMutableBufferPointer { buffer in
            try server.aggregate(
                global: buffer,
                updates: [
                    ClientUpdate(clientID: 1, delta: [1, -1], sampleCount: 1, vectors: ["control_delta": c1]),
                    ClientUpdate(clientID: 2, delta: [0, 2], sampleCount: 9, vectors: ["control_delta": c2]),
                ], context: AggregationContext(round: 1, totalClients: 2))
        }
        // x = mean Δ = [0.5, 0.5]; c = ([−1, 1] + [0, −2]) / 2 = [−0.5, −0.5]
        #expect(global == [0.5, 0.5])
        #expect(server.control == [-0.5, -0.5])
    }
}
