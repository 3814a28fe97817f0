import Dispatch
import Synchronization

#if canImport(CDNNL)
    import CDNNL
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Threads the engine may use for one operation: BLAS calls and the per-sample loops of
/// convolution and pooling. Set once by `BLAS.setThreads`; 1 inside the simulator, where
/// parallelism comes from running clients concurrently.
public enum ComputeThreads {
    private static let storage = Atomic<Int>(1)
    /// Per-thread override of `storage` (0 = none), set by `withThreads`.
    private static let overrideKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The current thread budget (at least 1): this thread's `withThreads` override, or the
    /// process-wide setting.
    public static var count: Int {
        if let local = pthread_getspecific(overrideKey) { return Int(bitPattern: local) }
        return storage.load(ordering: .relaxed)
    }

    /// Runs `body` with a thread budget of `n` on the calling thread only, leaving every other
    /// thread's budget alone (simulator workers use 1 while the process-wide setting may differ).
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(overrideKey)
        pthread_setspecific(overrideKey, UnsafeRawPointer(bitPattern: max(1, n)))
        defer { pthread_setspecific(overrideKey, previous) }
        return try body()
    }

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
        #if canImport(CDNNL)
            if ComputeBackend.current == .onednn {
                // On oneDNN's OpenMP team: one pool of threads for the library's kernels and the engine's loops.
                return withoutActuallyEscaping(body) { escapable in
                    var job = TeamJob(body: escapable, total: total)
                    withUnsafeMutablePointer(to: &job) { pointer in
                        fs_parallel(Int32(workers), pointer) { context, worker, workers in
                            let job = context!.assumingMemoryBound(to: TeamJob.self).pointee
                            let range = ComputeThreads.splitRange(job.total, parts: Int(workers), index: Int(worker))
                            // The caller is on oneDNN, and so are its workers (nested regions run serially).
                            ComputeBackend.with(.onednn) {
                                ComputeThreads.withThreads(1) { job.body(Int(worker), range) }
                            }
                        }
                    }
                }
            }
        #endif
        // Workers touch disjoint ranges; the caller's closure only needs to outlive this call.
        let backend = ComputeBackend.current
        withoutActuallyEscaping(body) { escapable in
            nonisolated(unsafe) let work = escapable
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                // Workers compute on the caller's backend; nested parallel regions inside one run serially.
                ComputeBackend.with(backend) { withThreads(1) { work(w, splitRange(total, parts: workers, index: w)) } }
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

    /// Runs `body` over contiguous pieces of `range`, one per worker, when the range has at least
    /// `minimum` elements (elementwise passes over a model's parameters); else on the caller alone.
    public static func forEachPiece(of range: Range<Int>, minimum: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
        guard count > 1, range.count >= minimum else { return body(range) }
        forEachRange(range.count) { _, piece in
            body((range.lowerBound + piece.lowerBound)..<(range.lowerBound + piece.upperBound))
        }
    }

    /// A `forEachRange` call handed to the OpenMP team through a C context pointer.
    private struct TeamJob {
        let body: (_ worker: Int, _ range: Range<Int>) -> Void
        let total: Int
    }

    /// How many workers `forEachRange(total)` will use.
    public static func workers(for total: Int) -> Int { max(1, min(count, total)) }
}
