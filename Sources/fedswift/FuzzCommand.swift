import ArgumentParser
import FedCompress
import FedCore
import Foundation

extension FedSwiftCommand {
    /// A long fuzz campaign over every decoder (`CodecFuzzer`).
    struct FuzzCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fuzz",
            abstract: "Decode many random and mutated payloads with every codec; report any crash-free violation.",
            discussion: """
                A violation is an error other than CodecError, a sparse update with unsorted or \
                out-of-range indices, a non-finite value (except from the bit-exact identity, fp16 and \
                bf16), a count above 2^31 - 1, or a codec rejecting its own payload. A decoder that traps \
                ends the process. Exits with status 1 when there is any violation.
                """)

        @Option(help: "Mutated payloads to decode (each with every codec).") var iterations = 100_000
        @Option(help: "Root seed; iteration i uses the stream fuzz/i.") var seed: UInt64 = 0
        @Flag(help: "Print one JSON object (progress goes to standard error).") var json = false

        func validate() throws {
            guard iterations >= 0 else { throw ValidationError("--iterations must be ≥ 0") }
        }

        func run() throws {
            let clock = ContinuousClock()
            let start = clock.now
            let total = iterations
            let asJSON = json
            var tenths = 0
            let report = try CodecFuzzer.run(iterations: total, seed: seed) { done in
                let reached = done * 10 / max(1, total)
                guard reached > tenths else { return }
                tenths = reached
                let line = "\(reached * 10) %: \(done)/\(total) iterations, \(fmt((clock.now - start).seconds, 1)) s"
                if asJSON { writeError(line + "\n") } else { print(line) }
            }
            let seconds = (clock.now - start).seconds
            if json {
                let object = Summary(
                    iterations: report.iterations, seed: seed, payloadsTried: report.payloadsTried,
                    accepted: report.accepted, rejected: report.rejected,
                    nonFinitePassedThrough: report.nonFinitePassedThrough,
                    codecs: report.codecNames.map {
                        .init(
                            name: $0, accepted: report.perCodec[$0]?.accepted ?? 0,
                            rejected: report.perCodec[$0]?.rejected ?? 0)
                    },
                    violationCount: report.violationCount, violations: report.violations, seconds: seconds)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                encoder.keyEncodingStrategy = .convertToSnakeCase
                print(String(decoding: try encoder.encode(object), as: UTF8.self))
            } else {
                print("iterations: \(report.iterations) (seed \(seed))")
                print("payloads:   \(report.payloadsTried), each decoded by \(report.codecNames.count) codecs")
                print("accepted:   \(report.accepted)")
                print("rejected:   \(report.rejected)")
                print("non-finite from bit-exact codecs (allowed): \(report.nonFinitePassedThrough)")
                let width = max(5, report.codecNames.map(\.count).max() ?? 0)
                func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
                    let fill = String(repeating: " ", count: max(0, n - s.count))
                    return left ? fill + s : s + fill
                }
                print(
                    pad("codec", width) + "  " + pad("accepted", 10, left: true) + "  "
                        + pad("rejected", 10, left: true))
                for name in report.codecNames {
                    let c = report.perCodec[name] ?? CodecFuzzer.Counts()
                    print(
                        pad(name, width) + "  " + pad("\(c.accepted)", 10, left: true) + "  "
                            + pad("\(c.rejected)", 10, left: true))
                }
                print("violations: \(report.violationCount)")
                for v in report.violations { print("  " + v) }
                if report.violationCount > report.violations.count {
                    print("  … and \(report.violationCount - report.violations.count) more")
                }
                print("seconds:    \(fmt(seconds, 1))")
            }
            if report.violationCount > 0 { throw ExitCode(1) }
        }
    }

    /// The `--json` output of `fuzz`.
    private struct Summary: Encodable {
        struct Codec: Encodable {
            var name: String
            var accepted: Int
            var rejected: Int
        }

        var iterations: Int
        var seed: UInt64
        var payloadsTried: Int
        var accepted: Int
        var rejected: Int
        var nonFinitePassedThrough: Int
        var codecs: [Codec]
        var violationCount: Int
        var violations: [String]
        var seconds: Double
    }
}
