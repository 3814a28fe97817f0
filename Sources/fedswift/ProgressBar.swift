#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A one-line progress bar on standard error, redrawn in place on a terminal and printed once
/// at the end otherwise (so logs stay readable).
struct ProgressBar {
    let title: String
    let total: Int
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastDraw = ContinuousClock.now

    init(title: String, total: Int) {
        self.title = title
        self.total = total
    }

    mutating func update(_ done: Int, detail: String) {
        guard isTerminal else { return }
        let now = ContinuousClock.now
        guard done == total || now - lastDraw > .milliseconds(100) else { return }
        lastDraw = now
        let width = 30
        let filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        writeError("\r\(title) \(bar) \(done)/\(total) \(detail)\u{1B}[K")
    }

    func finish(_ line: String) {
        writeError(isTerminal ? "\r\(title) \(line)\u{1B}[K\n" : "\(title) \(line)\n")
    }
}

/// Writes `text` to standard error without buffering.
func writeError(_ text: String) {
    var t = text
    t.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
