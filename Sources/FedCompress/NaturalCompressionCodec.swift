import FedTensor

/// Natural compression (Horváth et al. 2019): each element is rounded stochastically to one of
/// the two powers of two around it, without bias.
///
/// For `2^e ≤ |v| < 2^(e+1)`: `decoded = sign(v) · 2^(e+1)` with probability `p = (|v| − 2^e) / 2^e`,
/// else `sign(v) · 2^e`, so `E[decoded] = v`. For float32 this `p` is exactly the mantissa `m / 2²³`,
/// drawn by comparing 23 random bits with `m`. Zero stays zero; tiny (subnormal) values round to
/// 0 or `±2^−126` with probability `|v| / 2^−126` (also unbiased). Values in the top octave
/// `[2^127, 2^128)` round down to `2^127` (float32 has no `2^128`): the only biased case.
///
/// Payload: header · n bytes of biased exponents (0 = zero, 1...254 = `2^(byte − 127)`, 255 rejected)
/// · ⌈n/8⌉ bytes of sign bits, LSB first, 1 = negative. 9 bits per element.
public struct NaturalCompressionCodec: Codec {
    public init() {}

    public var id: CodecID { .natural }
    public var name: String { "natural" }

    public func encode(_ values: UnsafeBufferPointer<Float>, context: CodecContext) throws -> [UInt8] {
        let n = values.count
        var rng = SeededRNG(seed: context.seed, stream: context.stream + "/natural")
        var exponents = [UInt8](repeating: 0, count: n)
        var bw = BitWriter(capacity: (n + 7) / 8)
        try exponents.withUnsafeMutableBufferPointer { e in
            for i in 0..<n {
                let bits = values[i].bitPattern
                var exponent = (bits >> 23) & 0xFF
                let mantissa = bits & 0x7F_FFFF
                guard exponent != 0xFF else { throw CodecError(.nonFinite, "element \(i) is not finite") }
                if mantissa != 0 && UInt32(truncatingIfNeeded: rng.next() >> 41) < mantissa { exponent += 1 }
                e[i] = UInt8(min(exponent, 254))
                bw.write(bit: bits >> 31 == 1)
            }
        }
        var w = PayloadWriter(capacity: 16 + n + (n + 7) / 8)
        CodecHeader(codec: id, count: n).write(to: &w)
        w.write(bytes: exponents)
        w.write(bytes: bw.finish())
        return w.bytes
    }

    public func decode(_ payload: [UInt8]) throws -> DecodedUpdate {
        var r = PayloadReader(payload)
        let header = try CodecHeader.read(from: &r, expected: id)
        let n = header.count
        guard r.remaining == n + (n + 7) / 8 else {
            throw CodecError(.countMismatch, "\(n) elements need \(n + (n + 7) / 8) bytes, \(r.remaining) follow")
        }
        let exponents = try r.readBytes(n, "the exponents")
        let signs = try r.readBytes((n + 7) / 8, "the sign bits")
        try r.finish()
        var out = [Float](repeating: 0, count: n)
        try exponents.withUnsafeBufferPointer { e in
            try signs.withUnsafeBufferPointer { s in
                try out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<n {
                        let exponent = UInt32(e[i])
                        guard exponent != 0xFF else {
                            throw CodecError(.nonFinite, "element \(i) has exponent byte 255")
                        }
                        let sign = UInt32((s[i >> 3] >> UInt8(i & 7)) & 1)
                        o[i] = Float(bitPattern: sign << 31 | exponent << 23)
                    }
                }
            }
        }
        return .dense(out)
    }
}
