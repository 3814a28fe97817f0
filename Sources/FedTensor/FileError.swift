#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed file-system operation: the `errno` it failed with and a message naming the path.
///
/// ```swift
/// do { _ = try AtomicFile.read("missing.bin") } catch let error as FileError {
///     print(error)   // cannot open 'missing.bin' for reading: No such file or directory (errno 2)
/// }
/// ```
public struct FileError: Error, Sendable, CustomStringConvertible {
    /// The `errno` value the system call failed with (`ENOENT`, `EACCES`, …).
    public var code: Int32
    /// The path the operation was working on.
    public var path: String
    /// What failed, where and why, for people.
    public var message: String

    /// An error for `operation` on `path` that failed with `errno` value `code`.
    public init(code: Int32, path: String, operation: String) {
        self.code = code
        self.path = path
        self.message = "cannot \(operation) '\(path)': \(String(cString: strerror(code))) (errno \(code))"
    }

    public var description: String { message }
}
