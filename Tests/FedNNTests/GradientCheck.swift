import FedTensor
import Testing

@testable import FedNN

/// Finite-difference check of a model's backward pass on the scalar `Σ output·w` for a fixed
/// random `w`: analytic input and parameter gradients against central differences.
struct GradientCheck {
    var eps: Float = 1e-2
    var relativeTolerance: Float = 2e-2
    var absoluteTolerance: Float = 2e-3
    var coordinatesPerTensor = 24

    func run(
        _ layer: any Layer, input: Tensor, seed: UInt64 = 1, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let model = try Model(layer, inputShape: Shape(Array(input.shape.dims.dropFirst())), seed: seed)
        var rng = SeededRNG(seed: seed, stream: "gradcheck")
        let out = model.forward(input, training: true)
        let w = (0..<out.count).map { _ in rng.nextNormal() }
        let upstream = Tensor(shape: out.shape, scalars: w)
        model.parameters.zeroGradients()
        let dx = model.backwardWithInputGradient(upstream).scalars
        let dp = Array(model.parameters.gradients)

        func objective(_ x: Tensor) -> Double {
            let out = model.forward(x, training: true)
            let y = out.scalars
            var s: Double = 0
            for i in 0..<y.count { s += Double(y[i]) * Double(w[i]) }
            // Close the training pass so layers drop their caches; adds zeros to the gradients.
            model.backward(Tensor(shape: out.shape, repeating: 0))
            return s
        }
        func check(_ analytic: Float, _ numeric: Float, _ what: String) {
            let tol = absoluteTolerance + relativeTolerance * max(abs(analytic), abs(numeric))
            #expect(
                abs(analytic - numeric) <= tol, "\(what): analytic \(analytic) vs numeric \(numeric)",
                sourceLocation: sourceLocation)
        }
        // Input coordinates.
        var x = input
        for _ in 0..<min(coordinatesPerTensor, input.count) {
            let i = rng.nextInt(below: input.count)
            let orig = x[i]
            x[i] = orig + eps
            let plus = objective(x)
            x[i] = orig - eps
            let minus = objective(x)
            x[i] = orig
            check(dx[i], Float((plus - minus) / Double(2 * eps)), "d/dinput[\(i)]")
        }
        // Parameter coordinates, a few from every tensor.
        let p = model.parameters.values
        for e in model.parameters.entries {
            for _ in 0..<min(coordinatesPerTensor, e.count) {
                let i = e.offset + rng.nextInt(below: e.count)
                let orig = p[i]
                p[i] = orig + eps
                let plus = objective(input)
                p[i] = orig - eps
                let minus = objective(input)
                p[i] = orig
                check(dp[i], Float((plus - minus) / Double(2 * eps)), "d/d\(e.name)[\(i - e.offset)]")
            }
        }
    }
}

func randomTensor(_ shape: Shape, seed: UInt64, scale: Float = 1) -> Tensor {
    var rng = SeededRNG(seed: seed, stream: "tensor")
    return Tensor(shape: shape, scalars: (0..<shape.count).map { _ in scale * rng.nextNormal() })
}
