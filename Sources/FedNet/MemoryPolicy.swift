#if canImport(CMalloc)
    import CMalloc
#endif

/// How a coordinator process hands memory back to the system.
public enum MemoryPolicy {
    /// Allocations from this size up are mapped on their own and unmapped when freed.
    public static let mappedBytes = 256 << 10

    /// Makes freed large buffers leave the process at once. A coordinator moves large buffers
    /// between threads (1 MiB chunks in and out, whole updates, gRPC's framed messages); glibc's
    /// default raises its mmap threshold to the largest buffer freed (up to 32 MiB), after which
    /// such buffers come from the threads' heap arenas, where freed ones stay resident. Fixing the
    /// threshold (which turns that adjustment off) costs a map and an unmap per large buffer.
    /// Measured on a 102.5 MiB model with 2 clients: peak RSS 5.5× the model instead of 7.5×
    /// (`benchmarks/network_large_model.sh`). Process-wide; `fedswift serve` calls it at start.
    /// Does nothing where the C library is not glibc.
    public static func returnFreedBuffersToTheSystem() {
        #if canImport(CMalloc) && os(Linux)
            _ = mallopt(M_MMAP_THRESHOLD, Int32(mappedBytes))
        #endif
    }
}
