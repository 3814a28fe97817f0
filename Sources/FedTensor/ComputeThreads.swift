import Dispatch
import Synchronization

/// Threads the engine may use for one operation: BLAS calls and the per-sample loops of
/// convolution and pooling. Set once by `BLAS.setThreads`; 1 inside the simulator, where
/// parallelism comes from running clients concurrently.
public enum ComputeThreads {
    private static let storage = Atomic<Int>(1)

    /// The current thread budget (at least 1).
    public static var count: Int { storage.load(ordering: .relaxed) }

    static func set(_ n: Int) { storage.store(max(1, n), ordering: .relaxed) }

    /// Runs `body(worker, range)` over `0..<total` split into contiguous ranges, one per worker,
    /// on up to `count` threads (BLAS itself is single-threaded, see `BLAS.setThreads`). Work is
    /// split by index, never by timing, so results depend only on the thread count.
    public static func forEachRange(_ total: Int, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        let workers = min(count, total)
        if workers <= 1 {
            if total > 0 { body(0, 0..<total) }
            return
        }
        // Workers touch disjoint ranges; the caller's closure only needs to outlive this call.
        withoutActuallyEscaping(body) { escapable in
            nonisolated(unsafe) let work = escapable
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                work(w, splitRange(total, parts: workers, index: w))
            }
        }
    }

    /// The `index`-th of `parts` contiguous, near-equal pieces of `0..<total`.
    @inlinable
    public static func splitRange(_ total: Int, parts: Int, index: Int) -> Range<Int> {
        let base = total / parts
        let extra = total % parts
        let start = index * base + min(index, extra)
        return start..<(start + base + (index < extra ? 1 : 0))
    }

    /// How many workers `forEachRange(total)` will use.
    public static func workers(for total: Int) -> Int { max(1, min(count, total)) }
}
