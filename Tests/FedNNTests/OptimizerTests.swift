import FedTensor
import Testing

@testable import FedNN

/// Optimizer steps against values worked out by hand.
@Suite struct OptimizerTests {
    /// A one-tensor parameter set holding `values`, with `gradients` set.
    func params(_ values: [Float], grads: [Float]) -> ParameterSet {
        let p = ParameterSet(layout: [("w", [values.count])])
        p.setFlatValues(values)
        for i in grads.indices { p.gradients[i] = grads[i] }
        return p
    }

    @Test func plainSGD() {
        let p = params([1, -2], grads: [0.5, 1])
        SGD(learningRate: 0.1).step(p)
        #expect(p.flatValues == [0.95, -2.1])
    }

    @Test func momentumStartsFromGradientThenAccumulates() {
        let p = params([1], grads: [0.5])
        let opt = SGD(learningRate: 0.1, momentum: 0.9)
        opt.step(p)
        #expect(abs(p.values[0] - 0.95) < 1e-7)  // buf = 0.5
        opt.step(p)
        #expect(abs(p.values[0] - 0.855) < 1e-6)  // buf = 0.9·0.5 + 0.5 = 0.95
    }

    @Test func dampeningAppliesFromSecondStep() {
        let p = params([1], grads: [0.5])
        let opt = SGD(learningRate: 0.1, momentum: 0.9, dampening: 0.5)
        opt.step(p)
        #expect(abs(p.values[0] - 0.95) < 1e-7)
        opt.step(p)
        #expect(abs(p.values[0] - 0.88) < 1e-6)  // buf = 0.45 + 0.25 = 0.7
    }

    @Test func nesterovWithWeightDecay() {
        let p = params([1], grads: [0.5])
        SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true).step(p)
        // d = 0.5 + 0.1 = 0.6; buf = 0.6; update = 0.6 + 0.9·0.6 = 1.14
        #expect(abs(p.values[0] - 0.886) < 1e-6)
    }

    @Test func adamFirstStepMovesByLearningRate() {
        let p = params([1, 2], grads: [0.5, -3])
        Adam(learningRate: 0.01).step(p)
        // Bias-corrected m̂/√v̂ = sign(g) on the first step.
        #expect(abs(p.values[0] - 0.99) < 1e-6)
        #expect(abs(p.values[1] - 2.01) < 1e-6)
    }

    @Test func adamSecondStep() {
        let p = params([1], grads: [0.5])
        let opt = Adam(learningRate: 0.01)
        opt.step(p)
        p.gradients[0] = -0.5
        opt.step(p)
        // m = 0.9·0.05 − 0.05 = −0.005, m̂ = −0.005/0.19; v = 0.999·0.00025 + 0.00025, v̂ = v/(1 − 0.999²)
        let m = -0.005 / 0.19
        let v = (0.999 * 0.00025 + 0.00025) / (1 - 0.999 * 0.999)
        let expected = 0.99 - 0.01 * m / (v.squareRoot() + 1e-8)
        #expect(abs(Double(p.values[0]) - expected) < 1e-6)
    }

    @Test func adamWDecaysBeforeTheUpdate() {
        let p = params([1], grads: [0.5])
        Adam.adamW(learningRate: 0.01, weightDecay: 0.1).step(p)
        #expect(abs(p.values[0] - 0.989) < 1e-6)  // 1·(1 − 0.001) − 0.01
    }

    @Test func adamL2WeightDecayGoesThroughTheMoments() {
        let p = params([1], grads: [0])
        Adam(learningRate: 0.01, weightDecay: 0.1).step(p)
        #expect(abs(p.values[0] - 0.99) < 1e-6)  // g = 0 + 0.1·1 > 0, first step moves by lr
    }

    @Test func frozenTensorsAreNotUpdated() throws {
        let model = try Model(
            Sequential([("a", Linear(2, 2)), ("b", Linear(2, 2))]), inputShape: [2], seed: 0)
        try model.setFrozen(true, path: "a")
        let before = model.parameters.flatValues
        for i in 0..<model.parameters.count { model.parameters.gradients[i] = 1 }
        SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1).step(model.parameters)
        let after = model.parameters.flatValues
        let a =
            model.parameters.entry(named: "a.weight")!.range
            .lowerBound..<model.parameters.entry(named: "a.bias")!.range.upperBound
        #expect(Array(after[a]) == Array(before[a]))
        let b = model.parameters.entry(named: "b.weight")!.range
        for i in b { #expect(after[i] != before[i]) }
    }
}
