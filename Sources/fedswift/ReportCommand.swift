import ArgumentParser
import FedEngine
import FedSim
import FedTensor
import Foundation

extension FedSwiftCommand {
    /// HTML comparison of finished runs.
    struct ReportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract:
                "Plot test accuracy against round, virtual time and bytes for runs, and print time to a target accuracy."
        )

        @Argument(help: "Output folders of `fedswift simulate`.") var runs: [String]
        @Option(help: "Target test accuracy for the time-to-accuracy table.") var target = 0.7
        @Option(help: "HTML file to write (default: report.html in the first run's folder).") var out: String?

        func validate() throws {
            guard !runs.isEmpty else { throw ValidationError("give at least one run folder") }
            guard target > 0 && target <= 1 else { throw ValidationError("--target must be in (0, 1]") }
        }

        func run() throws {
            let histories = try runs.map { dir in
                do { return try RunHistory.load(directory: dir) } catch let e as ConfigError {
                    throw ValidationError(e.message)
                }
            }
            let path = out ?? (runs[0].hasSuffix("/") ? runs[0] : runs[0] + "/") + "report.html"
            try AtomicFile.write(Array(Report.html(runs: histories, target: target).utf8), to: path)
            for h in histories {
                if let t = h.timeToTarget(target) {
                    print(
                        "\(h.name): \(fmt(target, 2)) reached at round \(t.round), virtual \(fmt(t.virtualTime, 1)) s, "
                            + "wall \(fmt(t.wallTime, 1)) s, \(fmt(Double(t.bytes) / 1e6, 1)) MB")
                } else {
                    let best = h.rows.compactMap(\.testAccuracy).max().map { fmt($0, 4) } ?? "-"
                    print("\(h.name): \(fmt(target, 2)) not reached in \(h.rows.count) rounds (best \(best))")
                }
            }
            print("report: \(path)")
        }
    }
}
