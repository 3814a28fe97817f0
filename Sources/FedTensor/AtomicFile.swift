#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Whole-file reads and crash-safe whole-file writes.
///
/// A write goes to a temporary file beside the destination, is flushed to disk, and is then renamed
/// over the destination, so a crash leaves either the old file or the new one, never half of one:
/// ```swift
/// try AtomicFile.write(bytes, to: "checkpoints/round-42.safetensors")
/// let back = try AtomicFile.read("checkpoints/round-42.safetensors")
/// ```
public enum AtomicFile {
    /// Replaces the file at `path` with `bytes` atomically.
    ///
    /// Creates `.<name>.tmp-<pid>-<random>` in the destination's directory, writes and fsyncs it, renames
    /// it over `path` and fsyncs the directory so the rename itself is durable. A new file gets mode
    /// 0666 less the umask.
    /// - Throws: `FileError` naming the failing step; the temporary file is removed first.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        try write(to: path) { append in try append(bytes) }
    }

    /// Replaces the file at `path` atomically with what `body` appends, piece by piece (a file
    /// larger than any buffer the caller wants to hold); otherwise as ``write(_:to:)-(UnsafeRawBufferPointer,_)``.
    public static func write(
        to path: String, _ body: (_ append: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty, name != ".", name != ".." else {
            throw FileError(code: EISDIR, path: path, operation: "write a file at")
        }
        let tempPath = directory + ".\(name).tmp-\(getpid())-\(String(UInt64.random(in: .min ... .max), radix: 16))"

        let file = try FileDescriptor(
            path: tempPath, flags: O_WRONLY | O_CREAT | O_EXCL, operation: "create temporary file")
        do {
            do {
                try body { try file.write($0) }
                try file.sync()
            } catch {
                file.closeIgnoringErrors()
                throw error
            }
            try file.close()
            FaultInjection.point("before-rename \(name)")
            let renamed = tempPath.withCString { from in path.withCString { to in rename(from, to) } }
            if renamed != 0 { throw FileError(code: errno, path: path, operation: "rename '\(tempPath)' to") }
        } catch {
            _ = tempPath.withCString { unlink($0) }
            throw error
        }
        try syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// Replaces the file at `path` with `bytes` atomically; see `write(_:to:)` for raw buffers.
    public static func write(_ bytes: some Collection<UInt8>, to path: String) throws {
        let done: Void? = try bytes.withContiguousStorageIfAvailable { try write(UnsafeRawBufferPointer($0), to: path) }
        if done == nil {
            try Array(bytes).withUnsafeBytes { try write($0, to: path) }
        }
    }

    /// The whole contents of the file at `path`.
    /// - Throws: `FileError` if the file is missing or cannot be read.
    public static func read(_ path: String) throws -> [UInt8] {
        let file = try FileDescriptor(path: path, flags: O_RDONLY, operation: "open file for reading at")
        defer { file.closeIgnoringErrors() }
        return try file.readToEnd()
    }

    private static func syncDirectory(_ directory: String) throws {
        let handle = try FileDescriptor(
            path: directory, flags: O_RDONLY | O_DIRECTORY, operation: "open directory for fsync")
        defer { handle.closeIgnoringErrors() }
        do {
            try handle.sync()
        } catch let error as FileError where error.code == EINVAL || error.code == ENOTSUP {
            // Some file systems cannot fsync a directory; the rename is then as durable as they allow.
        }
    }
}
