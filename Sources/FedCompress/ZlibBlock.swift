import CZlib

/// A zlib-compressed (RFC 1950, 32 KiB window) block inside a payload: varint inflated length `m`,
/// then the zlib stream up to the end of the payload.
///
/// Reading never allocates more than `limit` bytes and rejects deflate bombs: `m` must not exceed
/// `limit` nor `1032 · compressed + 64` (deflate's best ratio is below 1032:1), and the stream must
/// end exactly after `m` inflated bytes with every compressed byte consumed.
enum ZlibBlock {
    /// zlib's maximum compression ratio bound used to reject impossible lengths before allocating.
    static let maximumRatio = 1032

    /// Appends the block for `inner` to `w`.
    static func write(_ inner: [UInt8], to w: inout PayloadWriter, level: Int32 = Z_DEFAULT_COMPRESSION) throws {
        guard inner.count <= Int(UInt32.max) else {
            throw CodecError(.invalidParameter, "\(inner.count) bytes are too many to deflate in one block")
        }
        // zlib keeps a back-pointer to its z_stream, so it lives at a fixed heap address.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        let status = deflateInit2_(
            stream, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw CodecError(.invalidParameter, "zlib deflateInit2 failed (status \(status))") }
        defer { deflateEnd(stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(inner.count))))
        let produced = try inner.withUnsafeBufferPointer { input in
            try out.withUnsafeMutableBufferPointer { output in
                // zlib accepts a null input pointer when there is no input.
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.pointee.avail_in = uInt(input.count)
                stream.pointee.next_out = output.baseAddress!
                stream.pointee.avail_out = uInt(output.count)
                let status = deflate(stream, Z_FINISH)
                guard status == Z_STREAM_END else {
                    throw CodecError(.invalidParameter, "zlib deflate did not finish (status \(status))")
                }
                return output.count - Int(stream.pointee.avail_out)
            }
        }
        w.writeVarint(UInt64(inner.count))
        w.write(bytes: out[..<produced])
    }

    /// Reads a block that runs to the end of the payload and returns its `m` inflated bytes.
    static func read(from r: inout PayloadReader, limit: Int) throws -> [UInt8] {
        let m = try r.readCount("the inflated length", limit: limit)
        let compressed = r.remaining
        guard m <= maximumRatio * compressed + 64 else {
            throw CodecError(.lengthOverflow, "\(compressed) deflated bytes cannot inflate to the claimed \(m) bytes")
        }
        let input = try r.readBytes(compressed, "the deflated block")
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        let status = inflateInit2_(stream, 15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw CodecError(.invalidHeader, "zlib inflateInit2 failed (status \(status))") }
        defer { inflateEnd(stream) }
        // One spare byte: inflating into it means the stream is longer than announced.
        var out = [UInt8](repeating: 0, count: m + 1)
        let (end, produced, left) = Array(input).withUnsafeBufferPointer { inBuf in
            out.withUnsafeMutableBufferPointer { outBuf in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.pointee.avail_in = uInt(inBuf.count)
                stream.pointee.next_out = outBuf.baseAddress!
                stream.pointee.avail_out = uInt(outBuf.count)
                var status = Z_OK
                while status == Z_OK {
                    let before = (stream.pointee.avail_in, stream.pointee.avail_out)
                    status = inflate(stream, Z_NO_FLUSH)
                    if status == Z_OK && before == (stream.pointee.avail_in, stream.pointee.avail_out) { break }
                }
                return (status, outBuf.count - Int(stream.pointee.avail_out), Int(stream.pointee.avail_in))
            }
        }
        guard produced <= m else {
            throw CodecError(.lengthOverflow, "the deflated block inflates beyond the announced \(m) bytes")
        }
        guard end == Z_STREAM_END else {
            let what = end == Z_DATA_ERROR ? "is corrupt" : "ends early (zlib status \(end))"
            throw CodecError(.truncated, "the deflated block \(what) after \(produced) of \(m) bytes")
        }
        guard produced == m else {
            throw CodecError(.countMismatch, "the deflated block inflates to \(produced) bytes, header says \(m)")
        }
        guard left == 0 else { throw CodecError(.trailingBytes, "\(left) unexpected bytes after the deflated block") }
        out.removeLast()
        return out
    }
}
