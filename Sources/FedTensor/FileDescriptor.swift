#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An open POSIX file descriptor whose operations throw `FileError`. The one place FedTensor calls the
/// system's file API, so `errno`, `EINTR` and short reads and writes are handled once.
struct FileDescriptor {
    let raw: Int32
    let path: String

    /// Opens `path`; `operation` words the error ("open … for reading").
    init(path: String, flags: Int32, mode: mode_t = 0o666, operation: String) throws {
        var fd: Int32
        repeat {
            fd = path.withCString { systemOpen($0, flags | O_CLOEXEC, mode) }
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw FileError(code: errno, path: path, operation: operation) }
        self.raw = fd
        self.path = path
    }

    /// Writes every byte of `bytes`, continuing after short writes and interruptions.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var cursor = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            // Darwin rejects single writes above INT_MAX; Linux caps them near 2 GiB anyway.
            let written = systemWrite(raw, cursor, min(remaining, 1 << 30))
            if written < 0 {
                if errno == EINTR { continue }
                throw FileError(code: errno, path: path, operation: "write")
            }
            cursor += written
            remaining -= written
        }
    }

    /// Reads from the current position to the end of the file.
    func readToEnd() throws -> [UInt8] {
        var info = stat()
        let sizeHint = fstat(raw, &info) == 0 ? Int(info.st_size) : 0
        var result: [UInt8] = []
        result.reserveCapacity(max(sizeHint, 0))
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { chunk.deallocate() }
        while true {
            let count = systemRead(raw, chunk.baseAddress, chunk.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError(code: errno, path: path, operation: "read")
            }
            if count == 0 { return result }
            result.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[..<count]))
        }
    }

    /// Flushes the file's data and metadata to stable storage.
    func sync() throws {
        while systemFsync(raw) != 0 {
            if errno == EINTR { continue }
            throw FileError(code: errno, path: path, operation: "fsync")
        }
    }

    /// Closes the descriptor, reporting the error some file systems (NFS) only give at close.
    func close() throws {
        // Retrying close after EINTR may close a descriptor another thread just opened; never retry.
        if systemClose(raw) != 0 && errno != EINTR {
            throw FileError(code: errno, path: path, operation: "close")
        }
    }

    /// Closes the descriptor on a path that is already failing with a more useful error.
    func closeIgnoringErrors() {
        _ = systemClose(raw)
    }
}

// File-scope wrappers: inside `FileDescriptor` the names `write` and `close` would find its own methods.
private func systemOpen(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}
private func systemFsync(_ fd: Int32) -> Int32 { fsync(fd) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
