/// Per-client memory of an `ErrorFeedback` scheme, owned by the caller (one per client and tensor).
///
/// Which arrays are used depends on the scheme; unused ones stay empty, and all start empty and are
/// sized (to zeros) on first use:
/// - `residual`: the residual e of `.residual`, or the accumulated velocity v of `.dgc`.
/// - `estimate`: the client's estimate g of `.ef21` (the server keeps the same g, see `EF21Server`).
/// - `velocity`: the momentum u of `.dgc`.
///
/// Not thread-safe: use one state from one task at a time. Do not share one state between schemes.
public final class ErrorFeedbackState {
    public internal(set) var residual: [Float]
    public internal(set) var estimate: [Float]
    public internal(set) var velocity: [Float]

    /// A fresh state (all memories zero).
    public init() {
        residual = []
        estimate = []
        velocity = []
    }

    /// A state holding the given memories (as read from a checkpoint).
    public init(residual: [Float], estimate: [Float], velocity: [Float]) {
        self.residual = residual
        self.estimate = estimate
        self.velocity = velocity
    }

    /// Forgets everything, e.g. when the model shape changes.
    public func reset() {
        residual = []
        estimate = []
        velocity = []
    }

    /// Makes `array` hold `n` elements: zeros if it was empty.
    /// - Throws: `CodecError.countMismatch` if it already holds a different number.
    static func prepare(_ array: inout [Float], count n: Int, name: String) throws {
        if array.isEmpty {
            array = [Float](repeating: 0, count: n)
        } else if array.count != n {
            throw CodecError(
                .countMismatch, "error-feedback \(name) holds \(array.count) elements, update has \(n)")
        }
    }
}
