/// Coding of a strictly increasing index set over `0..<count`, shared by the sparse codecs.
///
/// Three encodings are sized for every payload and the smallest is written (ties: lowest raw
/// value), preceded by its `Method` byte. With gaps `g₀ = i₀`, `gⱼ = iⱼ − iⱼ₋₁ − 1` (all ≥ 0):
/// - `varint`: each gap as an LEB128 varint;
/// - `bitmap`: `⌈count/8⌉` bytes, bit `i` (LSB first) set when `i` is kept; unused bits zero;
/// - `rice`: one byte `b` (0…30), then per gap `g >> b` in unary (ones ended by a zero) and the
///   low `b` bits of `g`, LSB first, zero-padded to a byte. `b ≈ log₂(mean gap · ln 2)`.
enum SparseIndexCoding {
    enum Method: UInt8, CaseIterable {
        case varint = 0
        case bitmap = 1
        case rice = 2
    }

    /// Byte sizes of the three encodings (excluding the method byte; Rice includes its parameter
    /// byte) and the Rice parameter.
    struct Sizes: Equatable {
        var varint: Int
        var bitmap: Int
        var rice: Int
        var riceParameter: Int

        var best: Method {
            if varint <= bitmap && varint <= rice { return .varint }
            return bitmap <= rice ? .bitmap : .rice
        }
    }

    static func sizes(_ indices: UnsafeBufferPointer<UInt32>, count n: Int) -> Sizes {
        var varintBytes = 0
        var gapSum = 0
        var previous = -1
        for i in indices {
            let g = Int(i) - previous - 1
            gapSum += g
            varintBytes += varintLength(UInt64(g))
            previous = Int(i)
        }
        let b = riceParameter(gapSum: gapSum, kept: indices.count)
        var bits = 0
        previous = -1
        for i in indices {
            let g = Int(i) - previous - 1
            bits += (g >> b) + 1 + b
            previous = Int(i)
        }
        return Sizes(
            varint: varintBytes, bitmap: (n + 7) / 8, rice: 1 + (bits + 7) / 8, riceParameter: b)
    }

    /// Rice parameter for geometric-like gaps: the power of two nearest to `mean · ln 2`.
    static func riceParameter(gapSum: Int, kept: Int) -> Int {
        guard kept > 0 else { return 0 }
        let m = Double(gapSum) / Double(kept) * 0.693_147_180_559_945_3
        var b = 0
        while b < 30 && Double(1 << (b + 1)) <= m * 1.414_213_562_373_095 { b += 1 }
        return b
    }

    static func varintLength(_ v: UInt64) -> Int {
        var x = v
        var n = 1
        while x >= 0x80 {
            x >>= 7
            n += 1
        }
        return n
    }

    /// Writes the method byte and the smallest encoding (or `forced`, for tests); returns the
    /// method written.
    @discardableResult
    static func write(
        _ indices: UnsafeBufferPointer<UInt32>, count n: Int, to w: inout PayloadWriter,
        forced: Method? = nil
    ) -> Method {
        let s = sizes(indices, count: n)
        let method = forced ?? s.best
        w.write(method.rawValue)
        switch method {
        case .varint:
            var previous = -1
            for i in indices {
                w.writeVarint(UInt64(Int(i) - previous - 1))
                previous = Int(i)
            }
        case .bitmap:
            var map = [UInt8](repeating: 0, count: s.bitmap)
            map.withUnsafeMutableBufferPointer { m in
                for i in indices { m[Int(i) >> 3] |= 1 << UInt8(i & 7) }
            }
            w.write(bytes: map)
        case .rice:
            let b = s.riceParameter
            w.write(UInt8(b))
            var bits = BitWriter(capacity: s.rice)
            var previous = -1
            for i in indices {
                let g = Int(i) - previous - 1
                bits.writeUnary(g >> b)
                bits.write(UInt64(truncatingIfNeeded: g), bits: b)
                previous = Int(i)
            }
            w.write(bytes: bits.finish())
        }
        return method
    }

    /// Reads `k` indices written by `write`, checking that they are strictly increasing and
    /// `< n` and that the encoding is canonical where it matters (bitmap popcount, padding).
    static func read(from r: inout PayloadReader, kept k: Int, count n: Int) throws -> [UInt32] {
        let raw = try r.readUInt8("the index coding")
        guard let method = Method(rawValue: raw) else {
            throw CodecError(
                .invalidHeader, "unknown index coding \(raw) (allowed: 0 varint, 1 bitmap, 2 rice)")
        }
        var out = [UInt32]()
        out.reserveCapacity(k)
        switch method {
        case .varint:
            var next = 0  // smallest index the next gap may produce
            for j in 0..<k {
                let g = try r.readVarint("an index gap")
                guard g < UInt64(n - next) else {
                    throw CodecError(.indexOutOfRange, "index gap \(j) (\(g)) leaves 0..<\(n)")
                }
                let index = next + Int(g)
                out.append(UInt32(index))
                next = index + 1
            }
        case .bitmap:
            let map = try r.readBytes((n + 7) / 8, "the index bitmap")
            var set = 0
            for byte in map { set += byte.nonzeroBitCount }
            guard set == k else {
                throw CodecError(.countMismatch, "bitmap has \(set) bits set, header says \(k)")
            }
            if n % 8 != 0, let last = map.last, last >> UInt8(n % 8) != 0 {
                throw CodecError(.indexOutOfRange, "bitmap sets bits at or beyond \(n)")
            }
            var base = 0
            for byte in map {
                var b = byte
                while b != 0 {
                    out.append(UInt32(base + b.trailingZeroBitCount))
                    b &= b - 1
                }
                base += 8
            }
        case .rice:
            let b = Int(try r.readUInt8("the Rice parameter"))
            guard b <= 30 else { throw CodecError(.invalidHeader, "Rice parameter \(b) exceeds 30") }
            let consumed = try r.bytes.withUnsafeBufferPointer { buffer in
                var bits = BitReader(buffer, byteOffset: r.offset, byteCount: r.remaining)
                var next = 0
                for j in 0..<k {
                    let q = try bits.readUnary(limit: n >> b, "a Rice quotient")
                    let g = q << b | Int(try bits.read(bits: b, "a Rice remainder"))
                    guard g < n - next else {
                        throw CodecError(.indexOutOfRange, "index gap \(j) (\(g)) leaves 0..<\(n)")
                    }
                    let index = next + g
                    out.append(UInt32(index))
                    next = index + 1
                }
                try bits.checkPadding()
                return bits.bytesConsumed
            }
            _ = try r.readBytes(consumed, "the Rice-coded indices")
        }
        return out
    }
}
