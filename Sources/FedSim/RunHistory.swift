import FedEngine
import Foundation

/// A finished (or running) experiment's metrics, read back from `metrics.jsonl`.
public struct RunHistory: Sendable {
    public var name: String
    public var rows: [RoundMetrics]

    /// Reads `DIR/metrics.jsonl`; the run is named after the folder.
    /// - Throws: `ConfigError` naming the file and line that could not be read.
    public static func load(directory: String) throws -> RunHistory {
        let path = directory.hasSuffix("/") ? directory + "metrics.jsonl" : directory + "/metrics.jsonl"
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigError(key: "", "cannot read \(path); is \(directory) the output folder of `fedswift simulate`?")
        }
        let rows = try parse(jsonl: text, source: path)
        let name = directory.split(separator: "/").last.map(String.init) ?? directory
        return RunHistory(name: name, rows: rows)
    }

    /// The rows of a `metrics.jsonl` text; `source` names it in errors.
    /// - Throws: `ConfigError` naming the line that is not a metrics record.
    public static func parse(jsonl text: String, source: String) throws -> [RoundMetrics] {
        var rows: [RoundMetrics] = []
        for (n, line) in text.split(separator: "\n").enumerated() where !line.isEmpty {
            guard let row = RoundMetrics(jsonLine: line) else {
                throw ConfigError(key: "", "\(source) line \(n + 1) is not a metrics record")
            }
            rows.append(row)
        }
        return rows
    }

    /// Where test accuracy first reached `target`: round, virtual and wall seconds, and bytes
    /// (up + down) exchanged until then.
    public func timeToTarget(_ target: Double) -> (round: Int, virtualTime: Double, wallTime: Double, bytes: Int)? {
        var bytes = 0
        for r in rows {
            bytes += r.bytesUp + r.bytesDown
            if let a = r.testAccuracy, a >= target { return (r.round, r.virtualTime, r.wallTime, bytes) }
        }
        return nil
    }

    /// Points (x, accuracy) for the rounds that were evaluated, x chosen by `axis`.
    func accuracyPoints(_ axis: ReportAxis) -> [(Double, Double)] {
        var bytes = 0.0
        var out: [(Double, Double)] = []
        for r in rows {
            bytes += Double(r.bytesUp + r.bytesDown)
            guard let a = r.testAccuracy else { continue }
            switch axis {
            case .round: out.append((Double(r.round), a))
            case .virtualTime: out.append((r.virtualTime, a))
            case .bytes: out.append((bytes / 1e6, a))
            }
        }
        return out
    }
}

enum ReportAxis: CaseIterable {
    case round, virtualTime, bytes

    var label: String {
        switch self {
        case .round: "round"
        case .virtualTime: "virtual time (s)"
        case .bytes: "bytes exchanged (MB, up + down)"
        }
    }
}
