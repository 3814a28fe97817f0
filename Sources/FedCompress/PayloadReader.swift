/// Reads little-endian fields from an untrusted payload: every read is bounds-checked and a
/// short or malformed payload is a thrown `CodecError`, never a crash.
public struct PayloadReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ n: Int, _ what: String) throws -> Int {
        guard n >= 0, n <= remaining else {
            throw CodecError(
                .truncated, "payload ends before \(what): need \(n) bytes at offset \(offset), \(remaining) left")
        }
        defer { offset += n }
        return offset
    }

    public mutating func readUInt8(_ what: String = "a byte") throws -> UInt8 { bytes[try take(1, what)] }

    public mutating func readUInt16(_ what: String = "a 16-bit field") throws -> UInt16 {
        let o = try take(2, what)
        return bytes.withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    }

    public mutating func readUInt32(_ what: String = "a 32-bit field") throws -> UInt32 {
        let o = try take(4, what)
        return bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    }

    public mutating func readUInt64(_ what: String = "a 64-bit field") throws -> UInt64 {
        let o = try take(8, what)
        return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
    }

    public mutating func readFloat(_ what: String = "a float") throws -> Float {
        Float(bitPattern: try readUInt32(what))
    }

    public mutating func readDouble(_ what: String = "a double") throws -> Double {
        Double(bitPattern: try readUInt64(what))
    }

    /// LEB128 unsigned varint of at most 10 bytes.
    public mutating func readVarint(_ what: String = "a varint") throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for _ in 0..<10 {
            let b = try readUInt8(what)
            if shift == 63 && b > 1 {
                throw CodecError(.lengthOverflow, "\(what) overflows 64 bits at offset \(offset - 1)")
            }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
        throw CodecError(.lengthOverflow, "\(what) is longer than 10 bytes at offset \(offset)")
    }

    /// A count that must not exceed `limit` (guards allocations against hostile lengths).
    public mutating func readCount(_ what: String, limit: Int) throws -> Int {
        let v = try readVarint(what)
        guard v <= UInt64(limit) else {
            throw CodecError(.invalidHeader, "\(what) is \(v), more than the allowed \(limit)")
        }
        return Int(v)
    }

    /// `n` raw bytes.
    public mutating func readBytes(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        let o = try take(n, what)
        return bytes[o..<(o + n)]
    }

    /// `n` little-endian float32 values into `out` (which must hold `n`).
    public mutating func readFloats(_ n: Int, into out: UnsafeMutableBufferPointer<Float>, _ what: String) throws {
        precondition(out.count >= n)
        guard n <= remaining / 4 else {
            throw CodecError(.truncated, "payload ends inside \(what): need \(4 * n) bytes, \(remaining) left")
        }
        let o = try take(4 * n, what)
        bytes.withUnsafeBytes { raw in
            #if _endian(little)
                UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: raw.baseAddress! + o, byteCount: 4 * n)
            #else
                for i in 0..<n {
                    out[i] = Float(
                        bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o + 4 * i, as: UInt32.self)))
                }
            #endif
        }
    }

    /// Throws unless every byte was consumed.
    public func finish() throws {
        guard remaining == 0 else {
            throw CodecError(.trailingBytes, "\(remaining) unexpected bytes after the payload")
        }
    }
}
