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

/// FedDyn: the client rule and the server step against hand computation, the regulariser's gradient
/// against finite differences, and a round trip of state through the strategy.
@Suite struct FedDynTests {
    @Test func clientRuleAddsTheDynamicRegulariserAndUpdatesItsLinearTerm() {
        // g − g_k + α(θ − x) with α = 0.5, x = [1, 2], g_k = [0.1, −0.2], θ = [1.5, 1], g = [0.3, 0.4]:
        // [0.3 − 0.1 + 0.25, 0.4 + 0.2 − 0.5] = [0.45, 0.1].
        let rule = FedDynClientRule(alpha: 0.5, linear: [0.1, -0.2])
        withBuffers([1, 2]) { rule.beginRound(global: $0) }
        var gradients: [Float] = [0.3, 0.4]
        withBuffers([1.5, 1]) { p in
            gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: p) }
        }
        #expect(abs(gradients[0] - 0.45) < 1e-6 && abs(gradients[1] - 0.1) < 1e-6)
        // g_k ← g_k − α(θ − x) at θ = [2, 1.5]: [0.1 − 0.5, −0.2 + 0.25] = [−0.4, 0.05], kept as "linear".
        let output = withBuffers([2, 1.5]) { rule.endRound(parameters: $0, steps: 4, learningRate: 0.1) }
        #expect(output.upload.isEmpty)
        let kept = output.state[FedDyn.clientStateName]!
        #expect(abs(kept[0] + 0.4) < 1e-6 && abs(kept[1] - 0.05) < 1e-6)
        // A first round's empty linear term is zero: only the proximal part acts.
        let first = FedDynClientAlgorithm(alpha: 0.5).makeRule(broadcast: [:], state: [:])
        withBuffers([1, 2]) { first.beginRound(global: $0) }
        var g: [Float] = [0, 0]
        withBuffers([1.5, 1]) { p in g.withUnsafeMutableBufferPointer { first.adjustGradients($0, parameters: p) } }
        #expect(g == [0.25, -0.5])
    }

    @Test func regulariserGradientMatchesFiniteDifferences() {
        // R(θ) = −⟨g_k, θ⟩ + (α/2)‖θ − x‖²; with zero loss gradient the rule must produce ∂R/∂θ.
        let alpha = 0.3
        let x: [Float] = [0.5, -1.25, 2]
        let linear: [Float] = [0.2, -0.7, 1.1]
        let theta: [Float] = [1.5, 0.25, -0.5]
        func r(_ t: [Double]) -> Double {
            var s = 0.0
            for j in t.indices {
                s += -Double(linear[j]) * t[j] + alpha / 2 * (t[j] - Double(x[j])) * (t[j] - Double(x[j]))
            }
            return s
        }
        let rule = FedDynClientRule(alpha: Float(alpha), linear: linear)
        withBuffers(x) { rule.beginRound(global: $0) }
        var gradients: [Float] = [0, 0, 0]
        withBuffers(theta) { p in gradients.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: p) } }
        let h = 1e-5
        for j in theta.indices {
            var plus = theta.map(Double.init)
            var minus = plus
            plus[j] += h
            minus[j] -= h
            let numeric = (r(plus) - r(minus)) / (2 * h)
            #expect(abs(Double(gradients[j]) - numeric) < 1e-5, "coordinate \(j)")
        }
    }

    @Test func serverStepAgainstHandComputation() throws {
        // α = 0.1, N = 4, x = [1, −1], Δ = [0.2, 0.4] and [0.6, 0]: mean Δ = [0.4, 0.2],
        // h = −0.1 · (1/4) · [0.8, 0.4] = [−0.02, −0.01], x = x + mean Δ − h/α = [1.6, −0.7].
        let strategy = FedDyn(alpha: 0.1)
        var global: [Float] = [1, -1]
        let updates = [
            ClientUpdate(clientID: 0, delta: [0.2, 0.4], sampleCount: 5),
            ClientUpdate(clientID: 3, delta: [0.6, 0], sampleCount: 50),
        ]
        let context = AggregationContext(round: 1, totalClients: 4)
        try global.withUnsafeMutableBufferPointer {
            try strategy.aggregate(global: $0, updates: updates, context: context)
        }
        #expect(abs(global[0] - 1.6) < 1e-6 && abs(global[1] + 0.7) < 1e-6)
        let h = strategy.state["h"]!
        #expect(abs(h[0] + 0.02) < 1e-7 && abs(h[1] + 0.01) < 1e-7)
        // Round 2, the same deltas: h = [−0.04, −0.02], x = [1.6 + 0.4 + 0.4, −0.7 + 0.2 + 0.2].
        try global.withUnsafeMutableBufferPointer {
            try strategy.aggregate(global: $0, updates: updates, context: context)
        }
        #expect(abs(global[0] - 2.4) < 1e-6 && abs(global[1] + 0.3) < 1e-6)
        // The state restores into a fresh strategy, which then steps identically.
        let restored = FedDyn(alpha: 0.1)
        try restored.restore(state: strategy.state, parameterCount: 2)
        var a = global
        var b = global
        try a.withUnsafeMutableBufferPointer { try strategy.aggregate(global: $0, updates: updates, context: context) }
        try b.withUnsafeMutableBufferPointer { try restored.aggregate(global: $0, updates: updates, context: context) }
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        // Bad state and more participants than clients are refused.
        #expect(throws: StrategyError.self) { try restored.restore(state: ["h": [1]], parameterCount: 2) }
        #expect(throws: StrategyError.self) { try restored.restore(state: ["c": [1, 2]], parameterCount: 2) }
        let error = #expect(throws: StrategyError.self) {
            try b.withUnsafeMutableBufferPointer {
                try restored.aggregate(
                    global: $0, updates: updates, context: AggregationContext(round: 4, totalClients: 1))
            }
        }
        #expect(error?.code == .invalidContext)
        #expect(try StrategyFactory.makeStrategy(name: "feddyn", parameters: ["alpha": 0.5]) is FedDyn)
        #expect(throws: StrategyError.self) {
            try StrategyFactory.makeStrategy(name: "feddyn", parameters: ["alpha": 0])
        }
    }

    /// Clients running the rule on quadratics L_k(θ) = ½‖θ − c_k‖² with exact local minimisation
    /// reach FedDyn's fixed point: the global model converges to the mean of the c_k (the global
    /// optimum) and every client's linear term to its own loss's gradient there (the paper's
    /// first-order condition).
    @Test func clientsAndServerConvergeToTheGlobalOptimumOnQuadratics() throws {
        let centres: [[Float]] = [[1, -2], [3, 0], [-1, 4]]
        let alpha: Float = 0.5
        let strategy = FedDyn(alpha: Double(alpha))
        var global: [Float] = [0, 0]
        var linear: [[Float]] = [[], [], []]
        for round in 1...200 {
            var updates: [ClientUpdate] = []
            for k in centres.indices {
                let rule = FedDynClientRule(alpha: alpha, linear: linear[k])
                global.withUnsafeBufferPointer { rule.beginRound(global: $0) }
                var theta = global
                for _ in 0..<100 {  // gradient descent on L_k + R to convergence
                    var g = zip(theta, centres[k]).map { $0 - $1 }
                    theta.withUnsafeBufferPointer { p in
                        g.withUnsafeMutableBufferPointer { rule.adjustGradients($0, parameters: p) }
                    }
                    for j in theta.indices { theta[j] -= 0.5 * g[j] }
                }
                let output = theta.withUnsafeBufferPointer {
                    rule.endRound(parameters: $0, steps: 100, learningRate: 0.5)
                }
                linear[k] = output.state[FedDyn.clientStateName]!
                updates.append(ClientUpdate(clientID: k, delta: zip(theta, global).map { $0 - $1 }, sampleCount: 1))
            }
            try global.withUnsafeMutableBufferPointer {
                try strategy.aggregate(
                    global: $0, updates: updates, context: AggregationContext(round: round, totalClients: 3))
            }
        }
        #expect(abs(global[0] - 1) < 1e-3 && abs(global[1] - 2 / 3) < 1e-3)
        for k in centres.indices {  // g_k = ∇L_k(θ*) = θ* − c_k
            #expect(abs(linear[k][0] - (global[0] - centres[k][0])) < 1e-3)
            #expect(abs(linear[k][1] - (global[1] - centres[k][1])) < 1e-3)
        }
    }
}
