import FedTensor

/// Feeds every decoder valid, mutated and cross-codec payloads and checks what comes back.
///
/// ```swift
/// let report = try CodecFuzzer.run(iterations: 100_000, seed: 0)
/// precondition(report.violations.isEmpty, report.violations.joined(separator: "\n"))
/// ```
/// First every codec encodes seeded vectors (sizes 0, 1, 7, 64, 1000, 4096; normal values,
/// mostly zeros, all zeros, magnitudes from subnormal to 2¹⁰⁰, and extremes such as ±`Float.greatestFiniteMagnitude`;
/// with a `[rows, cols]` shape so PowerSGD uses its low-rank mode, plus one flat vector). Each
/// codec must decode its own payloads to the encoded element count. Then every iteration picks a
/// seed payload of any codec, applies one to three mutations (bit flips, byte overwrites with
/// 0x00/0x7F/0x80/0xFF/random, truncation, insertion, deletion, duplication, random tails,
/// splices of two payloads, inflated varint fields, special floats, another codec id) and decodes
/// the result with every codec. Iteration `i` draws from `SeededRNG(seed: seed, stream: "fuzz/i")`,
/// so a violation is reproduced by its iteration number alone.
///
/// A decode either returns or throws. A **violation** is: an error that is not a `CodecError`; a
/// `.sparse` result whose indices are not strictly increasing, not below the count, or not as many
/// as the values; a non-finite decoded value (except from the bit-exact codecs in
/// `bitExactCodecs`, whose contract is to carry NaN and ±∞ through unchanged); a count above
/// `CodecHeader.maximumCount`; or a codec rejecting (or miscounting) its own valid payload.
/// A trap inside a decoder cannot be caught: it ends the process, which is the loudest report.
///
/// Memory stays bounded by what the decoders allocate: decoded updates are checked in place and
/// never densified (a hostile count may legally decode to a sparse update of 2³¹ − 1 elements).
public enum CodecFuzzer {
    /// Decodes by one codec: returned (`accepted`) or threw `CodecError` (`rejected`).
    public struct Counts: Sendable, Equatable {
        public var accepted: Int
        public var rejected: Int

        public init(accepted: Int = 0, rejected: Int = 0) {
            self.accepted = accepted
            self.rejected = rejected
        }
    }

    /// The outcome of a campaign.
    public struct Report: Sendable {
        /// Mutated payloads decoded (the `iterations` asked for).
        public var iterations: Int
        /// Payloads decoded by every codec: the valid seed payloads plus one per iteration.
        public var payloadsTried: Int
        /// Decodes that returned (over all codecs and payloads).
        public var accepted: Int
        /// Decodes that threw `CodecError`.
        public var rejected: Int
        /// `accepted` and `rejected` per codec, keyed by `Codec.name` (see `codecNames`).
        public var perCodec: [String: Counts]
        /// The keys of `perCodec` in the order of the codec list.
        public var codecNames: [String]
        /// Decodes by a bit-exact codec that returned NaN or ±∞ (allowed, not a violation).
        public var nonFinitePassedThrough: Int
        /// Every violation found; `violations` keeps the first `maximumViolationsKept`.
        public var violationCount: Int
        /// What went wrong, with the codec, the iteration and mutations, and the payload (hex).
        /// Empty when every decode behaved.
        public var violations: [String]
    }

    /// Codecs whose decoded values are the payload's bit patterns (NaN and ±∞ included, as their
    /// round-trip contract says), so a non-finite value from them is not a violation.
    public static let bitExactCodecs: Set<CodecID> = [.identity, .fp16, .bf16]

    /// Violation messages kept in a report (all are counted).
    public static let maximumViolationsKept = 100

    /// Element counts of the seed vectors.
    public static let seedSizes = [0, 1, 7, 64, 1000, 4096]

    /// One codec per `Codecs.catalog` entry with its defaults (`threshold` with `threshold: 0.5`),
    /// some parameter variants (among them QSGD with s = 25, a level count whose `norm / s · s`
    /// can round), and a `DeflateCodec` around Top-K.
    public static func defaultCodecs() throws -> [any Codec] {
        var codecs: [any Codec] = []
        for entry in Codecs.catalog {
            codecs.append(
                try Codecs.make(name: entry.name, parameters: entry.name == "threshold" ? ["threshold": 0.5] : [:]))
        }
        let variants: [(String, [String: Double])] = [
            ("topk", ["approximate": 1]), ("topk", ["fp16values": 1]), ("qsgd", ["elias": 1]),
            ("qsgd", ["s": 25, "bucket": 16]),
            ("randomk", ["unbiased": 1]), ("composite", ["s": 8, "deflate": 1]), ("signsgd", ["scaled": 1]),
            ("terngrad", ["bucket": 64]),
        ]
        for (name, parameters) in variants { codecs.append(try Codecs.make(name: name, parameters: parameters)) }
        codecs.append(DeflateCodec(inner: TopKCodec(ratio: 0.1)))
        return codecs
    }

    /// Runs `iterations` mutated payloads through every codec of `codecs` (default:
    /// `defaultCodecs()`). `onProgress` receives the number of iterations done, at least every
    /// 0.1 % and at the end.
    /// - Throws: `CodecError.invalidParameter` for a negative iteration count or an empty codec list.
    public static func run(
        iterations: Int, seed: UInt64, codecs: [any Codec]? = nil, onProgress: ((Int) -> Void)? = nil
    ) throws -> Report {
        guard iterations >= 0 else {
            throw CodecError(.invalidParameter, "the iteration count must be ≥ 0, got \(iterations)")
        }
        let codecs = try codecs ?? defaultCodecs()
        guard !codecs.isEmpty else { throw CodecError(.invalidParameter, "the fuzzer needs at least one codec") }
        var state = State(codecs: codecs, iterations: iterations)

        // Valid payloads, which their own codec must decode.
        let seeds = state.makeSeeds(seed: seed)
        for s in seeds {
            state.decodeWithEveryCodec(s.bytes, origin: "seed \(s.label)", ownCodec: s.codec, ownCount: s.count)
        }
        guard !seeds.isEmpty else {
            state.record("no codec could encode any seed vector, nothing to mutate")
            return state.report
        }

        var ids = Array(Set(codecs.map(\.id.rawValue))).sorted()
        if ids.isEmpty { ids = [CodecID.identity.rawValue] }
        let progressStep = max(1, iterations / 1000)
        for i in 0..<iterations {
            var rng = SeededRNG(seed: seed, stream: "fuzz/\(i)")
            let base = seeds[rng.nextInt(below: seeds.count)]
            var bytes = base.bytes
            var operations: [String] = []
            let rounds = rng.nextInt(below: 4) == 0 ? 2 + rng.nextInt(below: 2) : 1
            for _ in 0..<rounds {
                operations.append(mutate(&bytes, seeds: seeds, ids: ids, rng: &rng))
            }
            state.report.iterations += 1
            state.decodeWithEveryCodec(
                bytes, origin: "iteration \(i) (\(operations.joined(separator: ", ")) of seed \(base.label))")
            if (i + 1) % progressStep == 0 || i + 1 == iterations { onProgress?(i + 1) }
        }
        return state.report
    }

    /// Checks one decoded update; nil when it satisfies every invariant.
    public static func problem(with update: DecodedUpdate, bitExact: Bool) -> String? {
        switch update {
        case .dense(let values):
            guard values.count <= CodecHeader.maximumCount else {
                return "decoded \(values.count) elements, more than the maximum \(CodecHeader.maximumCount)"
            }
            if !bitExact, let j = values.firstIndex(where: { !$0.isFinite }) {
                return "dense value \(j) is \(values[j])"
            }
        case .sparse(let n, let indices, let values):
            guard n >= 0, n <= CodecHeader.maximumCount else {
                return "sparse count \(n) is outside 0...\(CodecHeader.maximumCount)"
            }
            guard indices.count == values.count else {
                return "sparse update has \(indices.count) indices but \(values.count) values"
            }
            var previous = -1
            for (j, index) in indices.enumerated() {
                let i = Int(index)
                guard i > previous else {
                    return "sparse index \(j) (\(i)) does not exceed the previous one (\(previous))"
                }
                guard i < n else { return "sparse index \(j) (\(i)) is not below the count \(n)" }
                previous = i
            }
            if !bitExact, let j = values.firstIndex(where: { !$0.isFinite }) {
                return "sparse value \(j) (at index \(indices[j])) is \(values[j])"
            }
        }
        return nil
    }

    // MARK: - Seeds

    struct Seed {
        /// Index of the codec that made it.
        var codec: Int
        var count: Int
        var label: String
        var bytes: [UInt8]
    }

    enum VectorKind: String, CaseIterable {
        case normal
        case mostlyZero = "mostly-zero"
        case allZero = "all-zero"
        case scaled, extremes
    }

    static func vector(count n: Int, kind: VectorKind, rng: inout SeededRNG) -> [Float] {
        (0..<n).map { _ -> Float in
            switch kind {
            case .normal:
                return rng.nextNormal()
            case .mostlyZero:
                let v = rng.nextNormal()
                return rng.nextInt(below: 10) < 7 ? 0 : v
            case .allZero:
                return 0
            case .scaled:
                // |x| from subnormal (2⁻¹⁴⁹) to about 2¹⁰⁰.
                return rng.nextNormal() * Float(sign: .plus, exponent: rng.nextInt(below: 250) - 149, significand: 1)
            case .extremes:
                let specials: [Float] = [
                    .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude,
                    -.leastNonzeroMagnitude, .leastNormalMagnitude, -0.0, 0, 1e30, -1e-30, 65_504, 65_520,
                ]
                let v = rng.nextNormal()
                return rng.nextInt(below: 8) == 0 ? specials[rng.nextInt(below: specials.count)] : v
            }
        }
    }

    /// `[rows, cols]` with `rows` the largest divisor of `n` not above √n (empty for n = 0).
    static func matrixShape(_ n: Int) -> [Int] {
        guard n > 0 else { return [] }
        var rows = 1
        var d = 1
        while d * d <= n {
            if n % d == 0 { rows = d }
            d += 1
        }
        return [rows, n / rows]
    }

    // MARK: - Mutations

    /// Encodings of hostile varints: 2³¹ − 1, 2³¹, 2³² − 1, 2⁶³, 2⁶⁴ − 1, 11 bytes (overlong), 65 535, 0.
    static let hostileVarints: [[UInt8]] = [
        [0xFF, 0xFF, 0xFF, 0xFF, 0x07], [0x80, 0x80, 0x80, 0x80, 0x08], [0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
        [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], [UInt8](repeating: 0xFF, count: 11),
        [0xFF, 0xFF, 0x03], [0x00],
    ]

    static let specialFloats: [Float] = [
        .nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        .leastNonzeroMagnitude, .leastNormalMagnitude, -0.0, 1e38, -1, 65_504, Float(bitPattern: 0x7F80_0001),
    ]

    static let specialBytes: [UInt8] = [0x00, 0x7F, 0x80, 0xFF]

    /// Applies one random mutation to `bytes` and names it.
    static func mutate(_ bytes: inout [UInt8], seeds: [Seed], ids: [UInt8], rng: inout SeededRNG) -> String {
        func randomByte() -> UInt8 { UInt8(truncatingIfNeeded: rng.next()) }
        func anyByte() -> UInt8 {
            rng.nextInt(below: 2) == 0 ? specialBytes[rng.nextInt(below: specialBytes.count)] : randomByte()
        }
        /// A position inside the payload, past the 5-byte prefix when there is anything after it.
        func position() -> Int {
            bytes.count > 5 && rng.nextInt(below: 8) != 0
                ? 5 + rng.nextInt(below: bytes.count - 5) : rng.nextInt(below: bytes.count)
        }
        if bytes.isEmpty {
            bytes = seeds[rng.nextInt(below: seeds.count)].bytes
            if bytes.isEmpty { bytes = (0..<(1 + rng.nextInt(below: 16))).map { _ in randomByte() } }
            return "replace empty"
        }
        switch rng.nextInt(below: 13) {
        case 0:
            let flips = 1 + rng.nextInt(below: 4)
            for _ in 0..<flips { bytes[position()] ^= 1 << UInt8(rng.nextInt(below: 8)) }
            return "flip \(flips) bits"
        case 1:
            let at = position()
            bytes[at] = anyByte()
            return "overwrite byte \(at)"
        case 2:
            let keep = rng.nextInt(below: bytes.count)
            bytes.removeSubrange(keep...)
            return "truncate to \(keep)"
        case 3:
            let at = rng.nextInt(below: bytes.count + 1)
            let n = 1 + rng.nextInt(below: 8)
            bytes.insert(contentsOf: (0..<n).map { _ in anyByte() }, at: at)
            return "insert \(n) at \(at)"
        case 4:
            let keep = min(bytes.count, 5 + rng.nextInt(below: max(1, bytes.count - 4)))
            let n = rng.nextInt(below: 65)
            bytes = Array(bytes.prefix(keep)) + (0..<n).map { _ in randomByte() }
            return "random tail of \(n) after \(keep)"
        case 5:
            let other = seeds[rng.nextInt(below: seeds.count)].bytes
            let cut = rng.nextInt(below: bytes.count + 1)
            let from = rng.nextInt(below: other.count + 1)
            bytes = Array(bytes.prefix(cut)) + other[from...]
            return "splice at \(cut) with another seed from \(from)"
        case 6:
            // Replace a whole varint (at the element count, or anywhere) by a hostile one.
            let at = bytes.count > 5 && rng.nextInt(below: 2) == 0 ? 5 : position()
            var end = at
            while end < bytes.count && end - at < 10 && bytes[end] >= 0x80 { end += 1 }
            end = min(end + 1, bytes.count)
            let v = hostileVarints[rng.nextInt(below: hostileVarints.count)]
            bytes.replaceSubrange(at..<end, with: v)
            return "varint \(v.count) bytes at \(at)"
        case 7:
            let f = specialFloats[rng.nextInt(below: specialFloats.count)]
            let at = position()
            withUnsafeBytes(of: f.bitPattern.littleEndian) { raw in
                for (j, b) in raw.enumerated() where at + j < bytes.count { bytes[at + j] = b }
            }
            return "float \(f) at \(at)"
        case 8:
            guard bytes.count > 4 else { return mutate(&bytes, seeds: seeds, ids: ids, rng: &rng) }
            bytes[4] = rng.nextInt(below: 8) == 0 ? randomByte() : ids[rng.nextInt(below: ids.count)]
            return "codec id \(bytes[4])"
        case 9:
            let start = rng.nextInt(below: bytes.count)
            let n = 1 + rng.nextInt(below: min(16, bytes.count - start))
            bytes.removeSubrange(start..<(start + n))
            return "delete \(n) at \(start)"
        case 10:
            let start = rng.nextInt(below: bytes.count)
            let chunk = Array(bytes[start..<min(bytes.count, start + 1 + rng.nextInt(below: 32))])
            let at = rng.nextInt(below: bytes.count + 1)
            bytes.insert(contentsOf: chunk, at: at)
            return "duplicate \(chunk.count) from \(start) at \(at)"
        case 11:
            let start = position()
            let n = 1 + rng.nextInt(below: 16)
            let b = specialBytes[rng.nextInt(below: specialBytes.count)]
            for j in start..<min(bytes.count, start + n) { bytes[j] = b }
            return "fill \(n) with \(b) at \(start)"
        default:
            // A random payload behind a valid prefix.
            let n = rng.nextInt(below: 48)
            bytes = Array(bytes.prefix(5)) + (0..<n).map { _ in anyByte() }
            return "random body of \(n)"
        }
    }

    // MARK: - Bookkeeping

    struct State {
        let codecs: [any Codec]
        let names: [String]
        var report: Report

        init(codecs: [any Codec], iterations: Int) {
            self.codecs = codecs
            var names: [String] = []
            for codec in codecs {
                var name = codec.name
                var copy = 2
                while names.contains(name) {
                    name = "\(codec.name)#\(copy)"
                    copy += 1
                }
                names.append(name)
            }
            self.names = names
            report = Report(
                iterations: 0, payloadsTried: 0, accepted: 0, rejected: 0,
                perCodec: Dictionary(uniqueKeysWithValues: names.map { ($0, Counts()) }), codecNames: names,
                nonFinitePassedThrough: 0, violationCount: 0, violations: [])
        }

        mutating func record(_ message: String) {
            report.violationCount += 1
            if report.violations.count < CodecFuzzer.maximumViolationsKept { report.violations.append(message) }
        }

        /// Encodes the seed vectors with every codec; encoders may refuse (`CodecError`) values
        /// they cannot represent.
        mutating func makeSeeds(seed: UInt64) -> [Seed] {
            var seeds: [Seed] = []
            for (c, codec) in codecs.enumerated() {
                var seen = Set<[UInt8]>()
                for n in CodecFuzzer.seedSizes {
                    for kind in n == 0 ? [.normal] : VectorKind.allCases {
                        let stream = "fuzz/seed/\(c)/\(n)/\(kind.rawValue)"
                        var rng = SeededRNG(seed: seed, stream: stream)
                        let values = CodecFuzzer.vector(count: n, kind: kind, rng: &rng)
                        var shapes = [CodecFuzzer.matrixShape(n)]
                        if n == 64 && kind == .normal { shapes.append([]) }
                        for shape in shapes {
                            let label = "\(names[c]) n=\(n) \(kind.rawValue)\(shape.isEmpty ? "" : " \(shape)")"
                            do {
                                let bytes = try codec.encode(
                                    values, context: CodecContext(seed: seed, stream: stream, shape: shape))
                                if seen.insert(bytes).inserted {
                                    seeds.append(Seed(codec: c, count: n, label: label, bytes: bytes))
                                }
                            } catch is CodecError {
                            } catch {
                                record("\(names[c]) encoding \(label) threw \(type(of: error)): \(error)")
                            }
                        }
                    }
                }
            }
            return seeds
        }

        mutating func decodeWithEveryCodec(_ bytes: [UInt8], origin: String, ownCodec: Int? = nil, ownCount: Int = 0) {
            report.payloadsTried += 1
            for (c, codec) in codecs.enumerated() {
                let name = names[c]
                do {
                    let update = try codec.decode(bytes)
                    report.accepted += 1
                    report.perCodec[name, default: Counts()].accepted += 1
                    let bitExact = CodecFuzzer.bitExactCodecs.contains(codec.id)
                    if let problem = CodecFuzzer.problem(with: update, bitExact: bitExact) {
                        record("\(name) on \(origin): \(problem); payload \(hex(bytes))")
                    } else if bitExact && CodecFuzzer.problem(with: update, bitExact: false) != nil {
                        report.nonFinitePassedThrough += 1
                    }
                    if c == ownCodec && update.count != ownCount {
                        record("\(name) decoded its own \(origin) to \(update.count) elements, not \(ownCount)")
                    }
                } catch let error as CodecError {
                    report.rejected += 1
                    report.perCodec[name, default: Counts()].rejected += 1
                    if c == ownCodec { record("\(name) rejected its own \(origin): \(error)") }
                } catch {
                    record(
                        "\(name) on \(origin) threw \(type(of: error)) (not CodecError): \(error); payload \(hex(bytes))"
                    )
                }
            }
        }

        func hex(_ bytes: [UInt8]) -> String {
            let digits = Array("0123456789abcdef")
            let shown = bytes.prefix(96)
            var s = String()
            s.reserveCapacity(2 * shown.count + 24)
            for b in shown {
                s.append(digits[Int(b >> 4)])
                s.append(digits[Int(b & 15)])
            }
            return bytes.count > shown.count ? s + "… (\(bytes.count) bytes)" : s
        }
    }
}
