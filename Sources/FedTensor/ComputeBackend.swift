import Synchronization

#if canImport(Accelerate)
    import Accelerate
#elseif canImport(CBLAS)
    import CBLAS
#endif
#if canImport(CDNNL)
    import CDNNL
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The kernel library behind GEMM and convolution, chosen at run time among those compiled in:
/// oneDNN (x86-64 Linux; its JIT picks AVX-512 or AVX2 kernels from the CPU's feature bits, and
/// runs convolutions directly, without im2col), OpenBLAS (the portable fallback: GEMM, with
/// convolution as im2col plus GEMM) and Accelerate (Apple platforms).
///
/// The process-wide choice comes from `FEDSWIFT_BACKEND` (`onednn`, `openblas`, `accelerate`),
/// else the best available; `ComputeBackend.select(_:)` changes it and `with(_:_:)` overrides it
/// on one thread. A given backend and thread count computes bit-identical results run after run.
public enum ComputeBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case onednn, openblas, accelerate

    /// The environment variable that forces a backend.
    public static let environmentKey = "FEDSWIFT_BACKEND"

    /// Backends compiled into this build, best first.
    public static let available: [ComputeBackend] = {
        var list: [ComputeBackend] = []
        #if canImport(CDNNL)
            list.append(.onednn)
        #endif
        #if canImport(Accelerate)
            list.append(.accelerate)
        #else
            list.append(.openblas)
        #endif
        return list
    }()

    public var description: String { rawValue }

    /// Whether this build has the backend.
    public var isAvailable: Bool { Self.available.contains(self) }

    /// Parses a backend name, with an error that lists the ones this build has.
    public init(validating name: String) throws(BackendError) {
        guard let backend = ComputeBackend(rawValue: name.lowercased()) else {
            throw BackendError(
                "unknown compute backend '\(name)'; choose one of: \(Self.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard backend.isAvailable else { throw .notInBuild(name) }
        self = backend
    }

    // MARK: Selection

    private static let selected = Atomic<Int>(-1)
    /// Per-thread override (0 = none, else index + 1), set by `with(_:_:)`.
    private static let overrideKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// What `FEDSWIFT_BACKEND` asks for: nil when unset, an error when it names no available backend.
    public static func fromEnvironment() throws(BackendError) -> ComputeBackend? {
        guard let raw = getenv(environmentKey), raw.pointee != 0 else { return nil }
        do {
            return try ComputeBackend(validating: String(cString: raw))
        } catch {
            throw BackendError("\(environmentKey): \(error.message)")
        }
    }

    /// The default: `FEDSWIFT_BACKEND` if it names an available backend, else the best available.
    public static var preferred: ComputeBackend { ((try? fromEnvironment()) ?? nil) ?? available[0] }

    /// The backend this thread's kernels use.
    public static var current: ComputeBackend {
        if let local = pthread_getspecific(overrideKey) { return allCases[Int(bitPattern: local) - 1] }
        var index = selected.load(ordering: .relaxed)
        if index < 0 {
            index = allCases.firstIndex(of: preferred)!
            selected.store(index, ordering: .relaxed)
        }
        return allCases[index]
    }

    /// Makes `backend` the process-wide choice. Set it before building models: layers keep the
    /// kernels they were first run with per shape, so a change applies to new shapes and models.
    public static func select(_ backend: ComputeBackend) throws(BackendError) {
        guard backend.isAvailable else { throw .notInBuild(backend.rawValue) }
        selected.store(allCases.firstIndex(of: backend)!, ordering: .relaxed)
    }

    /// Runs `body` with `backend` on the calling thread only (tests compare backends side by side).
    public static func with<R>(_ backend: ComputeBackend, _ body: () throws -> R) rethrows -> R {
        precondition(backend.isAvailable, "compute backend \(backend) is not in this build")
        let previous = pthread_getspecific(overrideKey)
        pthread_setspecific(overrideKey, UnsafeRawPointer(bitPattern: allCases.firstIndex(of: backend)! + 1))
        defer { pthread_setspecific(overrideKey, previous) }
        return try body()
    }

    // MARK: Description

    /// The library's version, e.g. "2.6.3" for oneDNN or OpenBLAS's build string.
    public var version: String { library.version }

    /// The instruction set the library dispatched to on this CPU: oneDNN's effective ISA
    /// (`avx512_core`, `avx2`, …) or OpenBLAS's kernel name (`Haswell`, `SkylakeX`, …).
    public var isa: String { library.isa }

    /// What the library says of itself; "absent" for a backend this build lacks.
    private var library: (version: String, isa: String) {
        switch self {
        case .onednn:
            #if canImport(CDNNL)
                return (String(cString: fs_dnnl_version()), String(cString: fs_dnnl_isa()))
            #else
                return ("absent", "absent")
            #endif
        case .openblas:
            #if canImport(CBLAS) && !canImport(Accelerate)
                return (String(cString: openblas_get_config()), String(cString: openblas_get_corename()))
            #else
                return ("absent", "absent")
            #endif
        case .accelerate:
            return ("system", "system")
        }
    }
}

/// A backend name that is unknown or not compiled in.
public struct BackendError: Error, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }

    static func notInBuild(_ name: String) -> BackendError {
        BackendError(
            "compute backend '\(name)' is not in this build; available: "
                + ComputeBackend.available.map(\.rawValue).joined(separator: ", "))
    }
}
