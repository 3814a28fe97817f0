import FedEngine
import Foundation

/// A self-contained HTML page (inline SVG, no scripts or external files) comparing runs:
/// test accuracy against round, virtual time and bytes, and a time-to-target table.
public enum Report {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public static func html(runs: [RunHistory], target: Double) -> String {
        var page = """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>FedSwift report</title>
            <style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
            td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f4f4f4}
            td:first-child,th:first-child{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:1em}</style>
            </head><body><h1>FedSwift report</h1>
            """
        page +=
            "<h2>Time to \(Int((target * 100).rounded())) % test accuracy</h2><table><tr><th>run</th><th>rounds</th>"
        page +=
            "<th>final accuracy</th><th>best accuracy</th><th>round</th><th>virtual time (s)</th><th>wall time (s)</th><th>bytes (MB)</th></tr>"
        for run in runs {
            let accs = run.rows.compactMap(\.testAccuracy)
            let final = run.rows.last?.testAccuracy.map { String(format: "%.4f", $0) } ?? "–"
            let best = accs.max().map { String(format: "%.4f", $0) } ?? "–"
            page += "<tr><td>\(escape(run.name))</td><td>\(run.rows.count)</td><td>\(final)</td><td>\(best)</td>"
            if let t = run.timeToTarget(target) {
                page += "<td>\(t.round)</td><td>\(String(format: "%.1f", t.virtualTime))</td>"
                page +=
                    "<td>\(String(format: "%.1f", t.wallTime))</td><td>\(String(format: "%.1f", Double(t.bytes) / 1e6))</td></tr>"
            } else {
                page += "<td colspan=4>not reached</td></tr>"
            }
        }
        page += "</table><h2>Test accuracy</h2><div class=plots>"
        for axis in ReportAxis.allCases { page += svg(runs: runs, axis: axis, target: target) }
        page += "</div></body></html>\n"
        return page
    }

    static func svg(runs: [RunHistory], axis: ReportAxis, target: Double) -> String {
        let (w, h, left, bottom, top, right) = (460.0, 320.0, 50.0, 40.0, 20.0, 20.0)
        let series = runs.map { $0.accuracyPoints(axis) }
        let maxX = max(series.flatMap { $0.map(\.0) }.max() ?? 1, 1e-9)
        let minX = axis == .round ? 1.0 : 0.0
        func px(_ x: Double) -> Double { left + (x - minX) / max(maxX - minX, 1e-9) * (w - left - right) }
        func py(_ y: Double) -> Double { h - bottom - y * (h - bottom - top) }
        var s = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(w))' height='\(Int(h))' font-size='11'>"
        s += "<rect width='100%' height='100%' fill='white'/>"
        for tick in stride(from: 0.0, through: 1.0, by: 0.2) {
            s += "<line x1='\(left)' x2='\(w - right)' y1='\(py(tick))' y2='\(py(tick))' stroke='#eee'/>"
            s += "<text x='\(left - 6)' y='\(py(tick) + 4)' text-anchor='end'>\(String(format: "%.1f", tick))</text>"
        }
        for i in 0...4 {
            let x = minX + (maxX - minX) * Double(i) / 4
            s += "<text x='\(px(x))' y='\(h - bottom + 16)' text-anchor='middle'>\(format(x))</text>"
        }
        s +=
            "<line x1='\(left)' x2='\(w - right)' y1='\(py(target))' y2='\(py(target))' stroke='#999' stroke-dasharray='4 3'/>"
        s += "<line x1='\(left)' x2='\(left)' y1='\(top)' y2='\(h - bottom)' stroke='#333'/>"
        s += "<line x1='\(left)' x2='\(w - right)' y1='\(h - bottom)' y2='\(h - bottom)' stroke='#333'/>"
        s += "<text x='\((left + w - right) / 2)' y='\(h - 6)' text-anchor='middle'>\(axis.label)</text>"
        for (i, points) in series.enumerated() where !points.isEmpty {
            let color = palette[i % palette.count]
            let path = points.map { "\(String(format: "%.2f", px($0.0))),\(String(format: "%.2f", py($0.1)))" }.joined(
                separator: " ")
            s += "<polyline fill='none' stroke='\(color)' stroke-width='1.6' points='\(path)'/>"
            s += "<text x='\(left + 8)' y='\(top + 14 + 14 * Double(i))' fill='\(color)'>\(escape(runs[i].name))</text>"
        }
        return s + "</svg>"
    }

    static func format(_ x: Double) -> String {
        x >= 1000 ? String(format: "%.0f", x) : x >= 10 ? String(format: "%.0f", x) : String(format: "%.1f", x)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "'", with: "&#39;")
    }
}
