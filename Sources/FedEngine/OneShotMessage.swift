import FedCore
import FedNN
import FedTensor

/// What the one-shot protocols send each way: named tensors, on the wire as safetensors, so every
/// byte counted is a byte of a real payload and a message can be opened with any safetensors tool.
public enum OneShotMessage {
    /// The safetensors bytes of `tensors`.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)]) throws -> [UInt8] {
        try SafeTensors.encode(tensors)
    }

    /// Decodes an untrusted message and checks it holds exactly the tensors of `expected` (names
    /// and shapes), all finite.
    /// - Throws: `SafeTensorsError` for a malformed payload; `ModelError` naming a missing,
    ///   unexpected, mis-shaped or non-finite tensor, prefixed with `sender`.
    public static func decode(
        _ bytes: [UInt8], expecting expected: [(name: String, shape: Shape)], from sender: String
    ) throws -> [(name: String, tensor: Tensor)] {
        let file = try SafeTensors.decode(bytes)
        let names = Set(file.names)
        if let missing = expected.first(where: { !names.contains($0.name) }) {
            throw ModelError(.missingParameter, "\(sender): the message lacks '\(missing.name)'")
        }
        let known = Set(expected.map(\.name))
        if let extra = file.names.first(where: { !known.contains($0) }) {
            throw ModelError(.unknownParameter, "\(sender): unexpected tensor '\(extra)'")
        }
        var out: [(name: String, tensor: Tensor)] = []
        for (name, shape) in expected {
            let t = file[name]!
            guard t.shape == shape else {
                throw ModelError(.shapeMismatch, "\(sender): '\(name)' has shape \(t.shape), expected \(shape)")
            }
            guard t.withUnsafeBufferPointer({ VectorKernels.allFinite($0) }) else {
                throw ModelError(.invalidInput, "\(sender): '\(name)' holds NaN or an infinity")
            }
            out.append((name, t))
        }
        return out
    }

    /// The names and shapes of `model`'s parameters and buffers that start with `prefix`.
    static func layout(of model: Model, prefix: String) -> [(name: String, shape: Shape)] {
        model.stateDict().filter { $0.name.hasPrefix(prefix) }.map { ($0.name, $0.tensor.shape) }
    }
}

/// What one client sends back from one stage.
public struct OneShotUpload: Sendable {
    public var payload: [UInt8]
    /// Samples processed in local training (0 for statistics only).
    public var samplesProcessed: Int
    public var steps: Int
    public var trainLoss: Double
    /// Wall seconds of the client's work.
    public var computeSeconds: Double

    public init(
        payload: [UInt8], samplesProcessed: Int = 0, steps: Int = 0, trainLoss: Double = 0, computeSeconds: Double = 0
    ) {
        self.payload = payload
        self.samplesProcessed = samplesProcessed
        self.steps = steps
        self.trainLoss = trainLoss
        self.computeSeconds = computeSeconds
    }
}
