import ArgumentParser
import FedTensor
import Foundation

extension FedSwiftCommand {
    /// What this build computes with on this machine.
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the compute backends in this build, their versions and the ISA each dispatches to.")

        @OptionGroup var backendOptions: BackendOptions
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            try backendOptions.apply()
            let current = ComputeBackend.current
            let cpu = Self.cpuModel()
            if json {
                let backends = ComputeBackend.available.map {
                    ["name": $0.rawValue, "version": $0.version, "isa": $0.isa]
                }
                let object: [String: Any] = [
                    "backend": current.rawValue, "version": current.version, "isa": current.isa, "cpu": cpu,
                    "cores": ProcessInfo.processInfo.activeProcessorCount, "available": backends,
                ]
                try printJSON(object)
                return
            }
            print("backend: \(current) \(current.version) (isa \(current.isa))")
            for backend in ComputeBackend.available where backend != current {
                print("also available: \(backend) \(backend.version) (isa \(backend.isa))")
            }
            print("cpu: \(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        }

        /// The CPU's model name from /proc/cpuinfo (Linux), else the architecture.
        static func cpuModel() -> String {
            if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
                let colon = line.firstIndex(of: ":")
            {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            #if arch(x86_64)
                return "x86_64"
            #else
                return "arm64"
            #endif
        }
    }
}

/// Prints one JSON object on one line, keys sorted.
func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}
