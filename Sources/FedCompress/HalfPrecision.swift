/// Bit-exact conversions between float32 and the 16-bit formats IEEE binary16 (fp16) and
/// bfloat16, rounding to nearest with ties to even. NaN stays NaN (quiet), infinities stay
/// infinite, and fp16 overflow rounds to infinity as IEEE specifies.
public enum HalfPrecision {
    /// The fp16 bit pattern nearest to `value` (ties to even).
    ///
    /// Branch-free (selects only), so loops over it vectorise: normal results round by adding
    /// `0xFFF` plus the kept mantissa's lowest bit before the shift (a carry bumps the exponent, up
    /// to infinity); subnormal results let one float32 addition do the rounding (F. Giesen's
    /// `float_to_half_fast3_rtne`). NaNs keep their top payload bits with the quiet bit forced, so a
    /// NaN never becomes infinity.
    @inline(__always)
    public static func fp16Bits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = x & 0x8000_0000
        let a = x ^ sign
        // Normal fp16 range: rebias the exponent (−112 << 23, wrapping) and round at bit 13.
        let normal = (a &+ 0xC800_0FFF &+ ((a >> 13) & 1)) >> 13
        // |x| < 2⁻¹⁴: adding 0.5 aligns the fp16 subnormal grid with float32's last mantissa bit.
        let magic: UInt32 = 126 << 23
        let subnormal = (Float(bitPattern: a) + Float(bitPattern: magic)).bitPattern &- magic
        let special: UInt32 = a > 0x7F80_0000 ? 0x7E00 | ((a >> 13) & 0x3FF) : 0x7C00
        let h = a >= 0x4780_0000 ? special : (a < 0x3880_0000 ? subnormal : normal)
        return UInt16(truncatingIfNeeded: h | (sign >> 16))
    }

    /// The float32 value of an fp16 bit pattern (exact).
    ///
    /// Branch-free like `fp16Bits`: the exponent is rebiased by 112; infinities and NaNs by 112
    /// more; subnormals are renormalised by one exact float32 subtraction.
    @inline(__always)
    public static func float(fp16Bits h: UInt16) -> Float {
        let m = UInt32(h & 0x7FFF) << 13
        let exponent = m & 0x0F80_0000
        let normal = m &+ (112 << 23)
        let special = normal &+ (112 << 23)
        let subnormal = (Float(bitPattern: normal &+ (1 << 23)) - Float(bitPattern: 113 << 23)).bitPattern
        let bits = exponent == 0x0F80_0000 ? special : (exponent == 0 ? subnormal : normal)
        return Float(bitPattern: bits | UInt32(h & 0x8000) << 16)
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
