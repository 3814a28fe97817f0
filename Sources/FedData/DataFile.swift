#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads whole files into memory, inflating gzip transparently.
enum DataFile {
    /// The contents of the file at `path`, inflated if it starts with the gzip magic `1f 8b`.
    static func contents(path: String) throws -> [UInt8] {
        let bytes = try readBytes(path: path)
        return GzipInflater.isGzip(bytes) ? try GzipInflater.decompress(bytes, path: path) : bytes
    }

    /// Whether a regular file or a directory exists at `path`.
    static func exists(path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// The raw bytes of the file at `path`.
    static func readBytes(path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            if err == ENOENT || err == ENOTDIR {
                throw DataError(code: .missingFile, message: "no file at '\(path)'", path: path)
            }
            throw DataError(
                code: .unreadableFile, message: "cannot open '\(path)': \(describe(errno: err))", path: path)
        }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DataError(
                code: .unreadableFile, message: "cannot stat '\(path)': \(describe(errno: errno))", path: path)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw DataError(
                code: .unreadableFile, message: "'\(path)' is not a regular file (a directory or device?)",
                path: path)
        }
        let size = Int(info.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            while initialized < size {
                let n = read(fd, buffer.baseAddress! + initialized, size - initialized)
                if n > 0 {
                    initialized += n
                } else if n == 0 {
                    break  // the file shrank while we read it; the caller's length checks report it
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
        }
        if failure != 0 {
            throw DataError(
                code: .unreadableFile, message: "cannot read '\(path)': \(describe(errno: failure))", path: path)
        }
        return bytes
    }

    private static func describe(errno code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: text)) (errno \(code))"
    }
}
