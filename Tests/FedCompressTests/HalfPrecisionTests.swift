import FedTensor
import Testing

@testable import FedCompress

@Suite struct HalfPrecisionTests {
    @Test func fp16RoundsHandPickedValuesToTheExpectedBitPatterns() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3C00), (-2, 0xC000), (0.1, 0x2E66), (-0.0, 0x8000),
            (65_504, 0x7BFF), (65_519, 0x7BFF), (65_520, 0x7C00),  // 65 520 is the tie with 2¹⁶: even → ∞
            (1 + 0x1p-11, 0x3C00),  // tie between 0x3C00 and 0x3C01 → even
            (1 + 3 * 0x1p-11, 0x3C02),  // tie between 0x3C01 and 0x3C02 → even
            (0x1p-14, 0x0400), (0x1p-24, 0x0001), (0x1p-25, 0x0000), (3 * 0x1p-25, 0x0002),
            (0x1p-26, 0x0000), (-0x1p-24, 0x8001),
            (.infinity, 0x7C00), (-.infinity, 0xFC00), (1e10, 0x7C00),
        ]
        for (value, bits) in cases {
            #expect(HalfPrecision.fp16Bits(value) == bits, "fp16(\(value))")
        }
        let nan = HalfPrecision.fp16Bits(.nan)
        #expect(nan & 0x7C00 == 0x7C00 && nan & 0x3FF != 0)
        #expect(HalfPrecision.float(fp16Bits: nan).isNaN)
    }

    @Test func bf16RoundsHandPickedValuesToTheExpectedBitPatterns() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3F80), (-2, 0xC000), (.pi, 0x4049), (-0.0, 0x8000),
            (1 + 0x1p-8, 0x3F80),  // tie → even
            (1 + 3 * 0x1p-8, 0x3F82),  // tie → even (up)
            (1 + 0x1p-8 + 0x1p-20, 0x3F81),  // just above the tie → up
            (.greatestFiniteMagnitude, 0x7F80), (.infinity, 0x7F80), (-.infinity, 0xFF80),
        ]
        for (value, bits) in cases {
            #expect(HalfPrecision.bf16Bits(value) == bits, "bf16(\(value))")
        }
        #expect(HalfPrecision.float(bf16Bits: HalfPrecision.bf16Bits(.nan)).isNaN)
        // A NaN whose payload sits only in the low 16 bits must not turn into infinity.
        #expect(
            HalfPrecision.float(bf16Bits: HalfPrecision.bf16Bits(Float(bitPattern: 0x7F80_0001))).isNaN)
    }

    @Test func everyNonNaNHalfPatternRoundTripsExactly() {
        for h in 0...UInt16.max {
            let f = HalfPrecision.float(fp16Bits: h)
            if !f.isNaN { #expect(HalfPrecision.fp16Bits(f) == h) } else { #expect(h & 0x7C00 == 0x7C00) }
            let g = HalfPrecision.float(bf16Bits: h)
            if !g.isNaN { #expect(HalfPrecision.bf16Bits(g) == h) }
        }
    }

    #if !(os(macOS) && arch(x86_64))
        @Test func fp16RoundingMatchesTheStandardLibraryOnRandomBitPatterns() {
            var rng = SeededRNG(seed: 11)
            for _ in 0..<200_000 {
                let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
                if f.isNaN { continue }
                #expect(HalfPrecision.fp16Bits(f) == Float16(f).bitPattern)
            }
        }
    #endif

    @Test func codecsRoundTripRepresentableValuesLosslesslyWithTheFormulaSize() throws {
        var rng = SeededRNG(seed: 3)
        let raw = (0..<1000).map { _ in rng.nextNormal() * 100 } + [.infinity, -.infinity, 0, -0.0]
        for codec in [FP16Codec() as any Codec, BF16Codec()] {
            let isHalf = codec.id == .fp16
            let representable = raw.map { v -> Float in
                isHalf
                    ? HalfPrecision.float(fp16Bits: HalfPrecision.fp16Bits(v))
                    : HalfPrecision.float(bf16Bits: HalfPrecision.bf16Bits(v))
            }
            let bytes = try codec.encode(representable)
            // magic 3 + version 1 + id 1 + varint(1004) 2 + 2·1004
            #expect(bytes.count == 7 + 2 * representable.count)
            guard case .dense(let out) = try codec.decode(bytes) else {
                Issue.record("not dense")
                return
            }
            #expect(out.map(\.bitPattern) == representable.map(\.bitPattern))
            guard case .dense(let nan) = try codec.decode(try codec.encode([.nan])) else { return }
            #expect(nan[0].isNaN)
        }
    }

    @Test func halfPayloadsRejectTruncationTrailingBytesAndTheWrongCodec() throws {
        for codec in [FP16Codec() as any Codec, BF16Codec()] {
            let bytes = try codec.encode([1, 2, 3])
            for cut in 0..<bytes.count {
                #expect(throws: CodecError.self) { try codec.decode(Array(bytes.prefix(cut))) }
            }
            #expect(throws: CodecError.self) { try codec.decode(bytes + [0]) }
        }
        #expect(throws: CodecError.self) { try FP16Codec().decode(try BF16Codec().encode([1])) }
    }
}
