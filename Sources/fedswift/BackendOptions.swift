import ArgumentParser
import FedTensor

extension ComputeBackend: ExpressibleByArgument {}

/// `--backend`, shared by every command that runs kernels; without it `FEDSWIFT_BACKEND`, else
/// the best backend in this build.
struct BackendOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Compute backend: \(ComputeBackend.available.map(\.rawValue).joined(separator: ", ")) (default: $\(ComputeBackend.environmentKey) or \(ComputeBackend.available[0]))."
        ))
    var backend: ComputeBackend?

    /// Makes the chosen backend current; a name this build lacks is a usage error.
    func apply() throws {
        do throws(BackendError) {
            var choice = backend
            if choice == nil { choice = try ComputeBackend.fromEnvironment() }
            if let choice { try ComputeBackend.select(choice) }
        } catch {
            throw ValidationError(error.message)
        }
    }
}
