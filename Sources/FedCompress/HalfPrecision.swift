/// Bit-exact conversions between float32 and the 16-bit formats IEEE binary16 (fp16) and
/// bfloat16, rounding to nearest with ties to even. NaN stays NaN (quiet), infinities stay
/// infinite, and fp16 overflow rounds to infinity as IEEE specifies.
public enum HalfPrecision {
    /// The fp16 bit pattern nearest to `value` (ties to even).
    @inline(__always)
    public static func fp16Bits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let exponent = Int((x >> 23) & 0xFF)
        let mantissa = x & 0x7F_FFFF
        if exponent == 0xFF {
            // Keep the top payload bits and force the quiet bit so a NaN never becomes infinity.
            return mantissa == 0
                ? sign | 0x7C00 : sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        let e = exponent - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            let m = mantissa | 0x80_0000
            let shift = UInt32(14 - e)
            var h = m >> shift
            let rest = m & ((1 << shift) - 1)
            let halfway: UInt32 = 1 << (shift - 1)
            if rest > halfway || (rest == halfway && h & 1 == 1) { h += 1 }
            return sign | UInt16(truncatingIfNeeded: h)
        }
        // A carry out of the mantissa correctly bumps the exponent (up to infinity).
        var h = UInt32(e) << 10 | mantissa >> 13
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) { h += 1 }
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// The float32 value of an fp16 bit pattern (exact).
    @inline(__always)
    public static func float(fp16Bits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * (1.0 / 16_777_216.0)  // mantissa · 2⁻²⁴, exact
            return Float(bitPattern: magnitude.bitPattern | sign)
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }

    /// The bfloat16 bit pattern nearest to `value` (ties to even).
    @inline(__always)
    public static func bf16Bits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: x >> 16) | 0x0040 }
        let rounding: UInt32 = 0x7FFF + ((x >> 16) & 1)
        return UInt16(truncatingIfNeeded: (x &+ rounding) >> 16)
    }

    /// The float32 value of a bfloat16 bit pattern (exact).
    @inline(__always)
    public static func float(bf16Bits b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}
