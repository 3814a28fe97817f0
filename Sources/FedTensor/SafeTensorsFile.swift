/// The tensors and metadata decoded from a safetensors file.
///
/// ```swift
/// let file = try SafeTensors.read(path: "model.safetensors")
/// let weight = file["conv1.weight"]      // Tensor?
/// print(file.metadata["format"] ?? "-")
/// ```
public struct SafeTensorsFile: Sendable {
    /// The tensors in the order their bytes appear in the file.
    public let tensors: [(name: String, tensor: Tensor)]
    /// The string pairs stored under `__metadata__`; empty when the file has none.
    public let metadata: [String: String]
    private let indexByName: [String: Int]

    init(tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
        self.tensors = tensors
        self.metadata = metadata
        // The decoder has rejected duplicate names; keep the first if a caller ever passes some.
        self.indexByName = Dictionary(
            tensors.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { first, _ in first })
    }

    /// The tensor names in file order.
    public var names: [String] { tensors.map(\.name) }

    /// The tensor called `name`, or `nil` if the file has none by that name.
    public subscript(_ name: String) -> Tensor? {
        indexByName[name].map { tensors[$0].tensor }
    }
}
