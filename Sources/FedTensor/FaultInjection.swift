import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Named crash points for the tests of crash safety (kill at a chosen moment, then resume).
///
/// With `FEDSWIFT_FAULT=<point>@<n>` in the environment, the process kills itself with SIGKILL, as
/// an outside `kill -9` would, the n-th time it reaches `<point>` (`@<n>` left out: the first);
/// with `FEDSWIFT_FAULT=<point>@<n>:TERM` it sends itself SIGTERM there instead, as an operator
/// stopping it at that moment would, and goes on once the process's handler has seen it
/// (``acknowledge()``; at most a second later), so the stop is requested at exactly that point.
/// Without it every point is a no-op. Points in use: `round-trained` (clients have trained,
/// nothing aggregated), `round-end` (a round's metrics are written, its checkpoint is not), and
/// `before-rename <file name>` (an atomic write has its temporary file on disk, not yet renamed),
/// and `client-trained` (a networked client has trained, its update not sent).
public enum FaultInjection {
    private static let target: (point: String, occurrence: Int, signal: Int32)? = {
        guard var raw = getenv("FEDSWIFT_FAULT").map({ String(cString: $0) }), !raw.isEmpty else { return nil }
        var signal = SIGKILL
        if raw.hasSuffix(":TERM") {
            signal = SIGTERM
            raw.removeLast(5)
        }
        if let at = raw.lastIndex(of: "@"), let n = Int(raw[raw.index(after: at)...]), n > 0 {
            return (String(raw[..<at]), n, signal)
        }
        return (raw, 1, signal)
    }()
    private static let reached = Atomic<Int>(0)
    private static let handled = Atomic<Bool>(false)

    /// Reaching `point`: signals the process if it is the configured point's configured occurrence.
    public static func point(_ point: String) {
        guard let target, target.point == point else { return }
        guard reached.add(1, ordering: .relaxed).newValue == target.occurrence else { return }
        kill(getpid(), target.signal)
        for _ in 0..<1000 where !handled.load(ordering: .acquiring) { usleep(1000) }
    }

    /// Called by a signal handler when it has handled a signal (a no-op without a fault point).
    public static func acknowledge() { handled.store(true, ordering: .releasing) }
}
