import CZlib

/// Inflates gzip files (one or more concatenated members) with zlib.
enum GzipInflater {
    /// Whether `bytes` start with the gzip magic `1f 8b`.
    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// The inflated contents of the gzip data `input`, read from `path` (named in errors).
    static func decompress(_ input: [UInt8], path: String) throws -> [UInt8] {
        // zlib keeps a back-pointer to its z_stream and rejects calls if the struct moves, so it
        // lives at a fixed heap address rather than in a Swift local.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // 15 + 32: 32 KiB window, detect gzip or zlib header automatically.
        let initStatus = inflateInit2_(stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard initStatus == Z_OK else {
            throw DataError(
                code: .corruptGzip, message: "zlib could not start inflating '\(path)' (status \(initStatus))",
                path: path)
        }
        defer { inflateEnd(stream) }

        var output = [UInt8](repeating: 0, count: initialCapacity(for: input))
        var produced = 0
        try input.withUnsafeBufferPointer { inBuffer in
            let inBase = inBuffer.baseAddress!
            var handed = 0
            while true {
                if stream.pointee.avail_in == 0 && handed < inBuffer.count {
                    let n = min(inBuffer.count - handed, Int(UInt32.max))
                    stream.pointee.next_in = UnsafeMutablePointer(mutating: inBase + handed)
                    stream.pointee.avail_in = uInt(n)
                    handed += n
                }
                if produced == output.count {
                    output.append(contentsOf: repeatElement(0, count: max(output.count, 1 << 16)))
                }
                let status = output.withUnsafeMutableBufferPointer { outBuffer in
                    let room = min(outBuffer.count - produced, Int(UInt32.max))
                    stream.pointee.next_out = outBuffer.baseAddress! + produced
                    stream.pointee.avail_out = uInt(room)
                    let status = inflate(stream, Z_NO_FLUSH)
                    produced += room - Int(stream.pointee.avail_out)
                    return status
                }
                let consumed = handed - Int(stream.pointee.avail_in)
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    let rest = UnsafeBufferPointer(rebasing: inBuffer[consumed...])
                    if rest.isEmpty || rest.allSatisfy({ $0 == 0 }) {
                        return  // zero padding after the last member is common and harmless
                    }
                    if rest.count >= 2 && rest[0] == 0x1F && rest[1] == 0x8B {
                        inflateReset(stream)
                        continue
                    }
                    throw DataError(
                        code: .corruptGzip,
                        message: "gzip file '\(path)' has \(rest.count) bytes of non-gzip data after the end of "
                            + "its compressed stream at byte offset \(consumed); expected end of file or "
                            + "another gzip member",
                        path: path)
                case Z_BUF_ERROR where stream.pointee.avail_in == 0 && handed == inBuffer.count:
                    throw DataError(
                        code: .corruptGzip,
                        message: "gzip file '\(path)' is truncated: all \(inBuffer.count) compressed bytes were "
                            + "consumed (\(produced) bytes inflated) but the stream's end marker and trailer "
                            + "were not found",
                        path: path)
                case Z_BUF_ERROR:
                    continue  // output full; it grows at the top of the loop
                default:
                    let detail = stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    throw DataError(
                        code: .corruptGzip,
                        message: "gzip file '\(path)' is corrupt near compressed byte \(consumed) of "
                            + "\(inBuffer.count): \(detail)",
                        path: path)
                }
            }
        }
        output.removeLast(output.count - produced)
        return output
    }

    /// The gzip trailer's ISIZE (size mod 2^32 of the last member), bounded by deflate's maximum
    /// ratio so a hostile trailer cannot make us allocate gigabytes for a tiny file. One spare byte
    /// lets zlib report the end of the stream without a growth step.
    private static func initialCapacity(for input: [UInt8]) -> Int {
        guard input.count >= 18 else { return 1 << 12 }
        let n = input.count
        let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
        return min(isize, n * 1032) + 1
    }
}
