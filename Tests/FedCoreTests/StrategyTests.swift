import Foundation
import Testing

@testable import FedCore

/// Every registered strategy that needs no model to be built: FedImpro, shaped by its model's
/// cut, has its own tests (`FedImproStrategyTests`).
let modelFreeStrategies = StrategyFactory.strategyNames.filter { $0 != "fedimpro" }

/// Runs one round of `strategy` on `global` in place.
private func aggregate(
    _ strategy: any Strategy, _ global: inout [Float], _ updates: [ClientUpdate], totalClients: Int = 10
) throws {
    try global.withUnsafeMutableBufferPointer { buffer in
        try strategy.aggregate(
            global: buffer, updates: updates, context: AggregationContext(round: 1, totalClients: totalClients))
    }
}

/// True if every element is within `tolerance` (absolute) of the hand-computed value.
private func matches(_ actual: [Float], _ expected: [Double], tolerance: Double = 1e-6) -> Bool {
    actual.count == expected.count && zip(actual, expected).allSatisfy { abs(Double($0) - $1) <= tolerance }
}

/// Two clients with unequal sample counts over three parameters:
/// p_A = 1/4, p_B = 3/4, so Δ̄ = ¼·[1, 0, 2] + ¾·[−1, 2, 0] = [−0.5, 1.5, 0.5].
private let clientA = ClientUpdate(
    clientID: 1, delta: [1, 0, 2], sampleCount: 1, localSteps: 2, vectors: ["control_delta": [1, -2, 0]])
private let clientB = ClientUpdate(
    clientID: 2, delta: [-1, 2, 0], sampleCount: 3, localSteps: 6, vectors: ["control_delta": [3, 2, -4]])
private let clientC = ClientUpdate(
    clientID: 3, delta: [2, -2, 4], sampleCount: 4, localSteps: 3, vectors: ["control_delta": [4, 4, 8]])
private let start: [Float] = [1, 2, -1]

@Suite struct StrategyTests {
    // MARK: - FedAvg and FedProx

    @Test func fedAvgIsTheSampleWeightedMeanOfTheDeltas() throws {
        // x + Δ̄ = [1, 2, −1] + [−0.5, 1.5, 0.5] = [0.5, 3.5, −0.5]
        var global = start
        try aggregate(FedAvg(), &global, [clientA, clientB])
        #expect(global == [0.5, 3.5, -0.5])
    }

    @Test func fedAvgWeightsThreeClientsBySampleCount() throws {
        // p = [1/8, 3/8, 4/8]; Δ̄ = [1/8 − 3/8 + 1, 0 + 6/8 − 1, 2/8 + 0 + 2] = [0.75, −0.25, 2.25]
        var global = start
        try aggregate(FedAvg(), &global, [clientA, clientB, clientC])
        #expect(global == [1.75, 1.75, 1.25])
    }

    @Test func fedAvgScalesByTheServerLearningRate() throws {
        // x + 0.5·Δ̄ = [1 − 0.25, 2 + 0.75, −1 + 0.25]
        var global = start
        try aggregate(FedAvg(serverLearningRate: 0.5), &global, [clientA, clientB])
        #expect(global == [0.75, 2.75, -0.75])
    }

    @Test func fedProxAggregatesLikeFedAvgAndCarriesMu() throws {
        let prox = FedProx(mu: 0.1)
        var viaProx = start
        var viaAvg = start
        try aggregate(prox, &viaProx, [clientA, clientB, clientC])
        try aggregate(FedAvg(), &viaAvg, [clientA, clientB, clientC])
        #expect(viaProx == viaAvg)
        #expect(prox.name == "fedprox")
        let rule = try #require(prox.clientAlgorithm.makeRule(broadcast: [:], state: [:]) as? ProximalClientRule)
        #expect(rule.mu == Float(0.1))
    }

    // MARK: - FedAvgM

    @Test func fedAvgMAccumulatesServerMomentumOverTwoRounds() throws {
        let strategy = FedAvgM(serverLearningRate: 0.5, momentum: 0.5)
        var global = start
        // Round 1: v = 0.5·0 + Δ̄ = [−0.5, 1.5, 0.5]; x = [1, 2, −1] + 0.5·v = [0.75, 2.75, −0.75]
        try aggregate(strategy, &global, [clientA, clientB])
        #expect(global == [0.75, 2.75, -0.75])
        #expect(strategy.state["momentum"] == [-0.5, 1.5, 0.5])
        // Round 2, client C alone: Δ̄ = [2, −2, 4]; v = 0.5·[−0.5, 1.5, 0.5] + [2, −2, 4] = [1.75, −1.25, 4.25]
        // x = [0.75, 2.75, −0.75] + 0.5·v = [1.625, 2.125, 1.375]
        try aggregate(strategy, &global, [clientC])
        #expect(global == [1.625, 2.125, 1.375])
        #expect(strategy.state["momentum"] == [1.75, -1.25, 4.25])
    }

    @Test func fedAvgMDefaultsAreEtaOneBetaPointNine() {
        let strategy = FedAvgM()
        #expect(strategy.serverLearningRate == 1)
        #expect(strategy.momentum == 0.9)
        #expect(strategy.state.isEmpty)
    }

    // MARK: - SCAFFOLD

    @Test func scaffoldTakesTheUnweightedMeanAndUpdatesTheControlVariate() throws {
        let strategy = Scaffold()
        var global = start
        // Round 1, N = 4, S = {A, B}: mean Δ = ([1, 0, 2] + [−1, 2, 0]) / 2 = [0, 1, 1] (sample counts ignored)
        // x = [1, 3, 0]; c = 0 + (2/4)·([1, −2, 0] + [3, 2, −4]) / 2 = [1, 0, −1]
        try aggregate(strategy, &global, [clientA, clientB], totalClients: 4)
        #expect(global == [1, 3, 0])
        #expect(strategy.control == [1, 0, -1])
        // Round 2, S = {C}: x = [1, 3, 0] + [2, −2, 4] = [3, 1, 4]; c = [1, 0, −1] + (1/4)·[4, 4, 8] = [2, 1, 1]
        try aggregate(strategy, &global, [clientC], totalClients: 4)
        #expect(global == [3, 1, 4])
        #expect(strategy.state["control"] == [2, 1, 1])
    }

    @Test func scaffoldScalesTheModelStepByTheGlobalLearningRate() throws {
        // x = [1, 2, −1] + 0.5·[0, 1, 1] = [1, 2.5, −0.5]; the control update does not depend on η_g
        let strategy = Scaffold(serverLearningRate: 0.5)
        var global = start
        try aggregate(strategy, &global, [clientA, clientB], totalClients: 4)
        #expect(global == [1, 2.5, -0.5])
        #expect(strategy.control == [1, 0, -1])
    }

    @Test func scaffoldRejectsMissingControlDeltasAndTooFewClients() throws {
        let strategy = Scaffold()
        var global = start
        var bare = clientB
        bare.vectors = [:]
        let missing = #expect(throws: StrategyError.self) { try aggregate(strategy, &global, [clientA, bare]) }
        #expect(missing?.code == .missingVector)
        #expect(missing?.clientID == 2)
        var short = clientB
        short.vectors["control_delta"] = [1, 2]
        let length = #expect(throws: StrategyError.self) { try aggregate(strategy, &global, [clientA, short]) }
        #expect(length?.code == .lengthMismatch)
        var infinite = clientA
        infinite.vectors["control_delta"] = [0, .infinity, 0]
        let nonFinite = #expect(throws: StrategyError.self) { try aggregate(strategy, &global, [infinite, clientB]) }
        #expect(nonFinite?.code == .nonFiniteValue)
        #expect(nonFinite?.clientID == 1)
        let context = #expect(throws: StrategyError.self) {
            try aggregate(strategy, &global, [clientA, clientB, clientC], totalClients: 2)
        }
        #expect(context?.code == .invalidContext)
        #expect(global == start)
        #expect(strategy.state.isEmpty)
    }

    // MARK: - FedNova

    @Test func fedNovaNormalisesByLocalStepsWithoutMomentum() throws {
        // ρ = 0: a = τ = [2, 6]; p = [1/4, 3/4]; τ_eff = ¼·2 + ¾·6 = 5
        // d_A = [1, 0, 2] / 2 = [0.5, 0, 1]; d_B = [−1, 2, 0] / 6 = [−1/6, 1/3, 0]
        // Σ p d = [0.125 − 0.125, 0 + 0.25, 0.25 + 0] = [0, 0.25, 0.25]
        // x = [1, 2, −1] + 5·[0, 0.25, 0.25] = [1, 3.25, 0.25]   (FedAvg would give [0.5, 3.5, −0.5])
        var global = start
        try aggregate(FedNova(), &global, [clientA, clientB])
        #expect(matches(global, [1, 3.25, 0.25]))
    }

    @Test func fedNovaNormalizerFollowsTheMomentumFormula() {
        // a = [τ − ρ(1 − ρ^τ)/(1 − ρ)] / (1 − ρ)
        #expect(FedNova.normalizer(steps: 6, momentum: 0) == 6)
        #expect(FedNova.normalizer(steps: 1, momentum: 0.5) == 1)  // [1 − 0.5·0.5/0.5]/0.5 = 1
        #expect(FedNova.normalizer(steps: 2, momentum: 0.5) == 2.5)  // [2 − 0.5·0.75/0.5]/0.5 = 1.25/0.5
        #expect(FedNova.normalizer(steps: 6, momentum: 0.5) == 10.03125)  // [6 − 63/64]/0.5 = 321/32
    }

    @Test func fedNovaWithMomentumUsesTheNormalizers() throws {
        // ρ = 0.5, τ = [2, 6]: a = [2.5, 10.03125]; τ_eff = ¼·2.5 + ¾·10.03125 = 8.1484375
        // x = x + τ_eff·(¼·Δ_A/2.5 + ¾·Δ_B/10.03125)
        let tauEff = 0.25 * 2.5 + 0.75 * 10.03125
        let expected: [Double] = (0..<3).map { j in
            let normalized: Double = 0.25 * Double(clientA.delta[j]) / 2.5 + 0.75 * Double(clientB.delta[j]) / 10.03125
            return Double(start[j]) + tauEff * normalized
        }
        var global = start
        try aggregate(FedNova(localMomentum: 0.5), &global, [clientA, clientB])
        #expect(matches(global, expected))
    }

    @Test func fedNovaWithEqualStepsReducesToFedAvg() throws {
        let updates = [clientA, clientB, clientC].map { update in
            var update = update
            update.localSteps = 5
            return update
        }
        var nova = start
        var nesterov = start
        var average = start
        try aggregate(FedNova(), &nova, updates)
        try aggregate(FedNova(localMomentum: 0.9), &nesterov, updates)
        try aggregate(FedAvg(), &average, updates)
        #expect(matches(nova, average.map(Double.init)))
        #expect(matches(nesterov, average.map(Double.init)))
    }

    @Test func fedNovaRejectsNonPositiveLocalSteps() throws {
        var lazy = clientB
        lazy.localSteps = 0
        var global = start
        let error = #expect(throws: StrategyError.self) { try aggregate(FedNova(), &global, [clientA, lazy]) }
        #expect(error?.code == .invalidLocalSteps)
        #expect(error?.clientID == 2)
        #expect(global == start)
    }

    // MARK: - FedOpt

    /// p = [1/4, 3/4]: Δ̄ = ¼·[1, −2] + ¾·[−1, 2] = [−0.5, 1]
    private static let optUpdates = [
        ClientUpdate(clientID: 1, delta: [1, -2], sampleCount: 1),
        ClientUpdate(clientID: 2, delta: [-1, 2], sampleCount: 3),
    ]

    @Test func fedAdamWithFlowerDefaultsOverTwoRounds() throws {
        let strategy = FedOpt(.adam)  // η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-9
        var global: [Float] = [0, 1]
        // Round 1: m = 0.1·Δ̄ = [−0.05, 0.1]; v = 0.99·τ² + 0.01·Δ̄² ≈ [0.0025, 0.01]; √v = [0.05, 0.1]
        // x = [0, 1] + 0.1·[−0.05/0.05, 0.1/0.1] = [−0.1, 1.1]
        try aggregate(strategy, &global, Self.optUpdates)
        #expect(matches(global, [-0.1, 1.1]))
        #expect(matches(strategy.state["m"]!, [-0.05, 0.1], tolerance: 1e-8))
        #expect(matches(strategy.state["v"]!, [0.0025, 0.01], tolerance: 1e-9))
        // Round 2: m = 0.9·[−0.05, 0.1] + 0.1·[−0.5, 1] = [−0.095, 0.19]
        // v = 0.99·[0.0025, 0.01] + 0.01·[0.25, 1] = [0.004975, 0.0199]
        // x = [−0.1, 1.1] + 0.1·[−0.095/√0.004975, 0.19/√0.0199]
        try aggregate(strategy, &global, Self.optUpdates)
        let x2: [Double] = [-0.1 - 0.1 * 0.095 / 0.004975.squareRoot(), 1.1 + 0.1 * 0.19 / 0.0199.squareRoot()]
        #expect(matches(global, x2))
        #expect(matches(strategy.state["m"]!, [-0.095, 0.19], tolerance: 1e-7))
        #expect(matches(strategy.state["v"]!, [0.004975, 0.0199], tolerance: 1e-8))
    }

    @Test func fedYogiMovesTheSecondMomentBySign() throws {
        let strategy = FedOpt(.yogi)  // η = 0.01, β1 = 0.9, β2 = 0.99, τ = 1e-3, v₀ = τ² = 1e-6
        var global: [Float] = [0, 1]
        // Round 1: Δ̄² = [0.25, 1] > v₀, sign(v₀ − Δ̄²) = −1: v = 1e-6 + 0.01·[0.25, 1] = [0.002501, 0.010001]
        // m = [−0.05, 0.1]; x = [0, 1] + 0.01·[−0.05/(√0.002501 + 1e-3), 0.1/(√0.010001 + 1e-3)]
        try aggregate(strategy, &global, Self.optUpdates)
        let x1: [Double] = [
            -0.01 * 0.05 / (0.002501.squareRoot() + 1e-3), 1 + 0.01 * 0.1 / (0.010001.squareRoot() + 1e-3),
        ]
        #expect(matches(global, x1))
        #expect(matches(strategy.state["v"]!, [0.002501, 0.010001], tolerance: 1e-9))
        // Round 2, one client: Δ̄ = [0.01, 1], Δ̄² = [0.0001, 1]
        // element 0: v > Δ̄², sign +1: v = 0.002501 − 0.01·0.0001 = 0.0025
        // element 1: v < Δ̄², sign −1: v = 0.010001 + 0.01·1 = 0.020001
        // m = 0.9·[−0.05, 0.1] + 0.1·[0.01, 1] = [−0.044, 0.19]
        try aggregate(strategy, &global, [ClientUpdate(clientID: 7, delta: [0.01, 1], sampleCount: 5)])
        #expect(matches(strategy.state["v"]!, [0.0025, 0.020001], tolerance: 1e-9))
        #expect(matches(strategy.state["m"]!, [-0.044, 0.19], tolerance: 1e-8))
        let x2: [Double] = [
            x1[0] + 0.01 * -0.044 / (0.0025.squareRoot() + 1e-3),
            x1[1] + 0.01 * 0.19 / (0.020001.squareRoot() + 1e-3),
        ]
        #expect(matches(global, x2))
    }

    @Test func fedAdagradSumsSquaresFromTauSquared() throws {
        let strategy = FedOpt(.adagrad, tau: 0.5)  // η = 0.1, β1 = 0 so m = Δ̄; v₀ = τ² = 0.25
        var global: [Float] = [0, 1]
        // Round 1: v = 0.25 + [0.25, 1] = [0.5, 1.25]; x = [0, 1] + 0.1·[−0.5/(√0.5 + 0.5), 1/(√1.25 + 0.5)]
        try aggregate(strategy, &global, Self.optUpdates)
        let x1: [Double] = [0.1 * -0.5 / (0.5.squareRoot() + 0.5), 1 + 0.1 / (1.25.squareRoot() + 0.5)]
        #expect(matches(global, x1))
        #expect(strategy.state["v"] == [0.5, 1.25])
        #expect(strategy.state["m"] == [-0.5, 1])
        // Round 2: v = [0.5, 1.25] + [0.25, 1] = [0.75, 2.25]; x += 0.1·[−0.5/(√0.75 + 0.5), 1/(1.5 + 0.5)]
        try aggregate(strategy, &global, Self.optUpdates)
        let x2: [Double] = [x1[0] + 0.1 * -0.5 / (0.75.squareRoot() + 0.5), x1[1] + 0.05]
        #expect(matches(global, x2))
        #expect(strategy.state["v"] == [0.75, 2.25])
    }

    @Test func fedOptNamesAndFlowerDefaults() {
        #expect(FedOpt(.adam).name == "fedadam")
        #expect(FedOpt(.yogi).name == "fedyogi")
        #expect(FedOpt(.adagrad).name == "fedadagrad")
        let yogi = FedOpt(.yogi)
        #expect([yogi.serverLearningRate, yogi.beta1, yogi.beta2, yogi.tau] == [0.01, 0.9, 0.99, 1e-3])
        let adam = FedOpt(.adam)
        #expect([adam.serverLearningRate, adam.beta1, adam.beta2, adam.tau] == [0.1, 0.9, 0.99, 1e-9])
        let adagrad = FedOpt(.adagrad)
        #expect([adagrad.serverLearningRate, adagrad.beta1, adagrad.tau] == [0.1, 0, 1e-9])
    }

    // MARK: - Validation

    /// Every strategy after one valid round, so stateful ones have state to protect.
    private static func warmedUpStrategies() throws -> [(any Strategy, [Float])] {
        try modelFreeStrategies.map { name in
            let strategy = try StrategyFactory.makeStrategy(name: name)
            var global = start
            try aggregate(strategy, &global, [clientA, clientB, clientC])
            return (strategy, global)
        }
    }

    @Test func invalidUpdatesThrowAndLeaveGlobalAndStateUntouched() throws {
        var nan = clientB
        nan.delta = [0, .nan, 0]
        var infinite = clientC
        infinite.delta = [-.infinity, 0, 0]
        var short = clientB
        short.delta = [1, 2]
        var empty = clientB
        empty.sampleCount = 0
        var negative = clientB
        negative.sampleCount = -3
        let cases: [([ClientUpdate], StrategyError.Code, Int?)] = [
            ([], .noUpdates, nil),
            ([clientA, nan, clientC], .nonFiniteValue, 2),
            ([clientA, clientB, infinite], .nonFiniteValue, 3),
            ([clientA, short], .lengthMismatch, 2),
            ([clientA, empty], .invalidSampleCount, 2),
            ([negative], .invalidSampleCount, 2),
            ([clientA, clientB, clientA], .duplicateClient, 1),
        ]
        for (strategy, before) in try Self.warmedUpStrategies() {
            let stateBefore = strategy.state
            for (updates, code, clientID) in cases {
                var global = before
                let error = #expect(throws: StrategyError.self, "\(strategy.name)") {
                    try aggregate(strategy, &global, updates)
                }
                #expect(error?.code == code, "\(strategy.name)")
                #expect(error?.clientID == clientID, "\(strategy.name)")
                #expect(global == before, "\(strategy.name)")
                #expect(strategy.state == stateBefore, "\(strategy.name)")
            }
        }
    }

    @Test func nonFiniteErrorNamesTheClientAndIndex() throws {
        var nan = clientB
        nan.delta = [0, 0, .nan]
        var global = start
        let error = #expect(throws: StrategyError.self) { try aggregate(FedAvg(), &global, [clientA, nan]) }
        #expect(error?.message.contains("client 2") == true)
        #expect(error?.message.contains("index 2") == true)
    }

    @Test func stateOfAnotherModelSizeIsRejected() throws {
        for (strategy, _) in try Self.warmedUpStrategies() where !strategy.state.isEmpty {
            var small: [Float] = [0, 0]
            let update = ClientUpdate(
                clientID: 1, delta: [1, 1], sampleCount: 1, localSteps: 1, vectors: ["control_delta": [0, 0]])
            let error = #expect(throws: StrategyError.self, "\(strategy.name)") {
                try aggregate(strategy, &small, [update])
            }
            #expect(error?.code == .stateMismatch, "\(strategy.name)")
            #expect(small == [0, 0])
        }
    }

    // MARK: - Determinism

    @Test func aggregationIsBitIdenticalForEqualInputs() throws {
        // Awkward values (thirds, sevenths) so rounding differences would show.
        let updates = (1...3).map { id in
            ClientUpdate(
                clientID: id, delta: (0..<1_001).map { Float($0 % 7 - 3) / Float(3 * id) + 1e-3 * Float($0) },
                sampleCount: 2 * id + 1, localSteps: id + 1,
                vectors: ["control_delta": (0..<1_001).map { Float($0 % 5) / Float(7 * id) }])
        }
        let initial = (0..<1_001).map { Float($0) / 13 }
        func run(_ name: String) throws -> ([Float], [String: [Float]]) {
            let strategy = try StrategyFactory.makeStrategy(name: name)
            var global = initial
            for _ in 0..<3 { try aggregate(strategy, &global, updates) }
            return (global, strategy.state)
        }
        for name in modelFreeStrategies {
            let (first, firstState) = try run(name)
            let (second, secondState) = try run(name)
            #expect(first.map(\.bitPattern) == second.map(\.bitPattern), "\(name)")
            #expect(firstState.mapValues { $0.map(\.bitPattern) } == secondState.mapValues { $0.map(\.bitPattern) })
            #expect(first != initial, "\(name)")
        }
    }

    // MARK: - State for checkpoints

    @Test func restoredStateContinuesBitForBit() throws {
        // Two rounds, then the state moves to a fresh strategy: the third round must agree bit for bit.
        let updates = [clientA, clientB, clientC]
        for name in modelFreeStrategies {
            let original = try StrategyFactory.makeStrategy(name: name)
            var global = start
            for _ in 0..<2 { try aggregate(original, &global, updates) }
            let resumed = try StrategyFactory.makeStrategy(name: name)
            try resumed.restore(state: original.state, parameterCount: 3)
            #expect(resumed.state == original.state, "\(name)")
            var a = global
            var b = global
            try aggregate(original, &a, updates)
            try aggregate(resumed, &b, updates)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(name)")
            #expect(a != global, "\(name)")
        }
    }

    @Test func restoreRefusesStateOfAnotherStrategyOrModel() throws {
        let adam = FedOpt(.adam)
        var global = start
        try aggregate(adam, &global, [clientA])
        let state = adam.state
        let cases: [(any Strategy, [String: [Float]])] = [
            (FedAvg(), ["momentum": [0, 0, 0]]),
            (FedAvgM(), ["momentum": [0, 0]]),
            (FedOpt(.adam), ["m": state["m"]!]),
            (FedOpt(.yogi), ["m": state["m"]!, "v": [1, .nan, 1]]),
            (Scaffold(), ["control": [0, 0, 0], "m": [0, 0, 0]]),
        ]
        for (strategy, bad) in cases {
            let before = strategy.state
            #expect(throws: StrategyError.self, "\(strategy.name) \(bad.keys.sorted())") {
                try strategy.restore(state: bad, parameterCount: 3)
            }
            #expect(strategy.state == before)
        }
    }

    @Test func scaffoldBroadcastsItsControlAndBuildsRulesFromTheClientsState() throws {
        let scaffold = Scaffold()
        #expect(scaffold.broadcast(parameterCount: 3) == ["control": [0, 0, 0]])
        var global = start
        try aggregate(scaffold, &global, [clientA, clientB], totalClients: 4)
        // c = (Δc_A + Δc_B) / N = ([1, −2, 0] + [3, 2, −4]) / 4
        #expect(scaffold.broadcast(parameterCount: 3) == ["control": [1, 0, -1]])
        let rule = try #require(
            scaffold.clientAlgorithm.makeRule(broadcast: ["control": [1, 0, -1]], state: ["control": [0.5, 0.5, 0.5]])
                as? ScaffoldClientRule)
        #expect(rule.serverControl == [1, 0, -1])
        #expect(rule.clientControl == [0.5, 0.5, 0.5])
        #expect(FedAvg().broadcast(parameterCount: 3).isEmpty)
        #expect(FedAvg().clientAlgorithm.makeRule(broadcast: [:], state: [:]) is PlainClientRule)
    }

    // MARK: - Factory

    @Test func factoryBuildsEveryNamedStrategy() throws {
        for name in modelFreeStrategies {
            #expect(try StrategyFactory.makeStrategy(name: name).name == name)
        }
        #expect(try StrategyFactory.makeStrategy(name: "FedAvg").name == "fedavg")
    }

    @Test func factoryPassesParameters() throws {
        let avgm =
            try StrategyFactory.makeStrategy(
                name: "fedavgm", parameters: ["momentum": 0.5, "server_learning_rate": 2]) as? FedAvgM
        #expect(avgm?.momentum == 0.5)
        #expect(avgm?.serverLearningRate == 2)
        let prox = try StrategyFactory.makeStrategy(name: "fedprox", parameters: ["mu": 0.3]) as? FedProx
        #expect(prox?.mu == 0.3)
        let nova = try StrategyFactory.makeStrategy(name: "fednova", parameters: ["local_momentum": 0.9]) as? FedNova
        #expect(nova?.localMomentum == 0.9)
        let yogi = try StrategyFactory.makeStrategy(name: "fedyogi", parameters: ["tau": 0.01, "beta1": 0]) as? FedOpt
        #expect(yogi?.tau == 0.01)
        #expect(yogi?.beta1 == 0)
        #expect(yogi?.serverLearningRate == 0.01)
    }

    @Test func factoryErrorsNameWhatIsAllowed() {
        let name = #expect(throws: StrategyError.self) { try StrategyFactory.makeStrategy(name: "fedsgd") }
        #expect(name?.code == .unknownStrategy)
        #expect(
            name?.message.contains(
                "fedavg, fedavgm, fedprox, scaffold, fednova, feddyn, fedimpro, fedadam, fedyogi, fedadagrad")
                == true)
        let key = #expect(throws: StrategyError.self) {
            try StrategyFactory.makeStrategy(name: "fedadagrad", parameters: ["beta2": 0.9])
        }
        #expect(key?.code == .unknownParameter)
        #expect(key?.message.contains("server_learning_rate, beta1, tau") == true)
        let value = #expect(throws: StrategyError.self) {
            try StrategyFactory.makeStrategy(name: "fedavgm", parameters: ["momentum": 1])
        }
        #expect(value?.code == .invalidParameter)
        #expect(value?.message.contains("momentum") == true)
        let negative = #expect(throws: StrategyError.self) {
            try StrategyFactory.makeStrategy(name: "fedavg", parameters: ["server_learning_rate": 0])
        }
        #expect(negative?.code == .invalidParameter)
    }
}

/// Aggregation sums a tile of elements at a time: the sums are those of a whole-vector pass, bit
/// for bit, the scratch never exceeds one tile per summed vector, and a non-finite value anywhere
/// (even in the last tile) fails the aggregation before any element of the model changes.
@Suite struct TiledAggregationTests {
    /// Σ_k w_k v_k in update order, element by element, in Double: the sum every tile must equal.
    static func reference(_ vectors: [[Float]], weights: [Double]) -> [Double] {
        var sum = [Double](repeating: 0, count: vectors[0].count)
        for (k, v) in vectors.enumerated() {
            for j in sum.indices { sum[j] = k == 0 ? weights[k] * Double(v[j]) : sum[j] + weights[k] * Double(v[j]) }
        }
        return sum
    }

    @Test func tilesCoverTheModelWithTheWholeVectorSums() throws {
        let tile = DeltaAccumulator.tileElements
        let count = 2 * tile + 37
        // Values of every magnitude and sign, different per client, so the order of the terms shows.
        let updates = (0..<3).map { k in
            ClientUpdate(
                clientID: k, delta: (0..<count).map { Float(5 * sin(Double($0 * (k + 2) + 1))) },
                sampleCount: [7, 2, 11][k], localSteps: 1,
                vectors: ["c": (0..<count).map { Float(cos(Double($0 + k)) / Double(k + 3)) }])
        }
        let p = ClientUpdate.sampleWeights(updates)
        let expected = Self.reference(updates.map(\.delta), weights: p)
        let expectedC = Self.reference(updates.map { $0.vectors["c"]! }, weights: [0.5, 0.25, 0.125])
        let accumulator = DeltaAccumulator()
        var got = [Double](repeating: .nan, count: count)
        var gotC = [Double](repeating: .nan, count: count)
        var ranges: [Range<Int>] = []
        try accumulator.weightedSums(
            updates,
            [
                .init(vector: \.delta, weights: p, what: "delta"),
                .init(vector: \.vectors["c"]!, weights: [0.5, 0.25, 0.125], what: "c"),
            ],
            count: count
        ) { range, sums in
            ranges.append(range)
            for (i, j) in range.enumerated() { (got[j], gotC[j]) = (sums[0][i], sums[1][i]) }
        }
        #expect(ranges == [0..<tile, tile..<(2 * tile), (2 * tile)..<count])
        #expect(got == expected && gotC == expectedC)
        #expect(accumulator.capacity == 2 * tile)
        // The FedAvg mean, the same way.
        var mean = [Double](repeating: .nan, count: count)
        try accumulator.sampleWeightedMeanDelta(updates, count: count) { range, m in
            for (i, j) in range.enumerated() { mean[j] = m[i] }
        }
        #expect(mean == expected)
    }

    @Test func aNonFiniteValueInTheLastTileChangesNothing() throws {
        let count = DeltaAccumulator.tileElements + 10
        var bad = [Float](repeating: 0.5, count: count)
        bad[count - 1] = .infinity
        let control = [Scaffold.controlDeltaName: [Float](repeating: 0.25, count: count)]
        let updates = [
            ClientUpdate(
                clientID: 3, delta: [Float](repeating: 1, count: count), sampleCount: 1, localSteps: 1,
                vectors: control),
            ClientUpdate(clientID: 4, delta: bad, sampleCount: 1, localSteps: 1, vectors: control),
        ]
        let strategies: [any Strategy] = [FedAvg(), FedAvgM(momentum: 0.9), FedOpt(.adam), FedNova(), Scaffold()]
        for strategy in strategies {
            var global = [Float](repeating: 2, count: count)
            let error = #expect(throws: StrategyError.self) {
                try global.withUnsafeMutableBufferPointer {
                    try strategy.aggregate(
                        global: $0, updates: updates, context: AggregationContext(round: 1, totalClients: 10))
                }
            }
            #expect(error?.code == .nonFiniteValue && error?.clientID == 4)
            #expect(error?.message.contains("index \(count - 1)") == true)
            #expect(global == [Float](repeating: 2, count: count), "\(strategy.name) changed the model")
            #expect(strategy.state.isEmpty, "\(strategy.name) kept state from a failed round")
        }
    }
}
