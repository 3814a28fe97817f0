/// Learning rate as a function of the optimisation step, as PyTorch's `lr_scheduler`s.
public enum LearningRateSchedule: Sendable, Hashable {
    /// The base rate throughout.
    case constant
    /// Cosine annealing from the base rate to `minimum` over `totalSteps`
    /// (`CosineAnnealingLR` stepped per batch): `min + (base − min)·(1 + cos(π·t/T))/2`.
    case cosine(totalSteps: Int, minimum: Float = 0)
    /// Multiply by `gamma` every `stepSize` steps (`StepLR`).
    case step(stepSize: Int, gamma: Float)

    /// The rate for step `t` (0-based) given the base rate.
    public func rate(base: Float, step t: Int) -> Float {
        switch self {
        case .constant:
            return base
        case .cosine(let total, let minimum):
            let progress = Double(Swift.min(t, total)) / Double(Swift.max(total, 1))
            return minimum + (base - minimum) * Float((1 + _cosine(Double.pi * progress)) / 2)
        case .step(let size, let gamma):
            return base * pow(gamma, Float(t / Swift.max(size, 1)))
        }
    }
}

#if canImport(Glibc)
    import Glibc
    private func _cosine(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
    import Darwin
    private func _cosine(_ x: Double) -> Double { Darwin.cos(x) }
#endif
