import Testing

@testable import FedNN

@Suite struct LearningRateScheduleTests {
    @Test func constantKeepsTheBaseRate() {
        #expect(LearningRateSchedule.constant.rate(base: 0.1, step: 12345) == 0.1)
    }

    @Test func cosineStartsAtBaseHalvesMidwayAndEndsAtMinimum() {
        let s = LearningRateSchedule.cosine(totalSteps: 100)
        #expect(s.rate(base: 0.2, step: 0) == 0.2)
        #expect(abs(s.rate(base: 0.2, step: 50) - 0.1) < 1e-7)
        #expect(abs(s.rate(base: 0.2, step: 25) - 0.2 * Float((1 + 0.5.squareRoot()) / 2)) < 1e-7)
        #expect(s.rate(base: 0.2, step: 100) == 0)
        #expect(s.rate(base: 0.2, step: 150) == 0)
        let floor = LearningRateSchedule.cosine(totalSteps: 10, minimum: 0.01)
        #expect(abs(floor.rate(base: 0.1, step: 10) - 0.01) < 1e-9)
    }

    @Test func stepDecayMultipliesEveryStepSize() {
        let s = LearningRateSchedule.step(stepSize: 10, gamma: 0.5)
        #expect(s.rate(base: 1, step: 9) == 1)
        #expect(s.rate(base: 1, step: 10) == 0.5)
        #expect(s.rate(base: 1, step: 35) == 0.125)
    }
}
