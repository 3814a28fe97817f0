import Foundation

/// An array in NumPy's `.npy` format, the payload of a Flower `Array` (`stype` `numpy.ndarray`):
/// a header naming the element type (`descr`), the memory order and the shape, then the elements.
///
/// Parsing accepts format versions 1.0, 2.0 and 3.0, any supported `descr` in either byte order
/// (elements are kept little-endian), and C order only; the element bytes must be exactly what the
/// shape announces. ``npy`` writes what `numpy.save` writes (format 1.0 while the header fits,
/// its padding and alignment), so an array round-trips byte for byte.
///
/// ```swift
/// let weights = NumpyArray(float32: [1, 2, 3, 4], shape: [2, 2])
/// let again = try NumpyArray(npy: weights.npy)   // again == weights
/// ```
public struct NumpyArray: Sendable, Equatable {
    /// The element types a node reads and writes.
    public enum DType: String, Sendable, CaseIterable {
        case float16, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .int8, .uint8, .bool: 1
            case .float16, .int16, .uint16: 2
            case .float32, .int32, .uint32: 4
            case .float64, .int64, .uint64: 8
            }
        }

        /// NumPy's little-endian type string (`numpy.dtype.str`), e.g. `<f4`.
        public var descr: String {
            let kind: String
            switch self {
            case .float16, .float32, .float64: kind = "f"
            case .int8, .int16, .int32, .int64: kind = "i"
            case .uint8, .uint16, .uint32, .uint64: kind = "u"
            case .bool: kind = "b"
            }
            return (size == 1 ? "|" : "<") + kind + "\(size)"
        }

        /// The type of a `descr`, and whether its elements are big-endian.
        static func parse(descr: String) -> (DType, bigEndian: Bool)? {
            guard let order = descr.first, "<>|=".contains(order) else { return nil }
            let code = descr.dropFirst()
            guard let type = allCases.first(where: { $0.descr.dropFirst() == code }) else { return nil }
            return (type, order == ">" && type.size > 1)
        }
    }

    public let dtype: DType
    public let shape: [Int]
    /// The elements in C order, little-endian.
    public let elements: [UInt8]

    /// Elements in the shape's product.
    public var count: Int { shape.reduce(1, *) }

    /// An array of raw little-endian `elements`.
    /// - Throws: ``FlowerError`` if their length is not the shape's product times the element size.
    public init(dtype: DType, shape: [Int], elements: [UInt8]) throws {
        let bytes = Self.elementCount(shape)?.multipliedReportingOverflow(by: dtype.size)
        guard let bytes, !bytes.overflow, bytes.partialValue == elements.count else {
            throw FlowerError(
                .badArray, "\(elements.count) bytes do not hold a \(dtype.rawValue) array of shape \(shape)")
        }
        self.dtype = dtype
        self.shape = shape
        self.elements = elements
    }

    /// A float32 array.
    public init(float32 values: [Float], shape: [Int]) {
        precondition(shape.reduce(1, *) == values.count, "the shape must hold the values")
        dtype = .float32
        self.shape = shape
        elements = values.withUnsafeBytes { Array($0) }
    }

    /// A float64 array.
    public init(float64 values: [Double], shape: [Int]) {
        precondition(shape.reduce(1, *) == values.count, "the shape must hold the values")
        dtype = .float64
        self.shape = shape
        elements = values.withUnsafeBytes { Array($0) }
    }

    /// An int64 array.
    public init(int64 values: [Int64], shape: [Int]) {
        precondition(shape.reduce(1, *) == values.count, "the shape must hold the values")
        dtype = .int64
        self.shape = shape
        elements = values.withUnsafeBytes { Array($0) }
    }

    /// The elements as `Float`s (float16, float32 and float64 arrays; float64 rounds).
    /// - Throws: ``FlowerError`` `.unsupportedDType` for other element types.
    public func floats() throws -> [Float] {
        switch dtype {
        case .float32: return load(Float.self)
        case .float64: return load(Double.self).map { Float($0) }
        case .float16: return load(UInt16.self).map { Float(Float16(bitPattern: $0)) }
        default: throw FlowerError(.unsupportedDType, "a \(dtype.rawValue) array is not floating point")
        }
    }

    /// The elements of a float64 array.
    public func doubles() throws -> [Double] {
        guard dtype == .float64 else {
            throw FlowerError(.unsupportedDType, "a \(dtype.rawValue) array is not float64")
        }
        return load(Double.self)
    }

    /// The elements of an int64 array.
    public func int64s() throws -> [Int64] {
        guard dtype == .int64 else { throw FlowerError(.unsupportedDType, "a \(dtype.rawValue) array is not int64") }
        return load(Int64.self)
    }

    private func load<T>(_: T.Type) -> [T] {
        elements.withUnsafeBytes { raw in
            (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
        }
    }

    static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            n = p
        }
        return n
    }
}

// MARK: - The .npy format

extension NumpyArray {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// numpy aligns the start of the elements to 64 bytes and leaves room for the first axis to
    /// grow to 21 digits (`numpy.lib.format.ARRAY_ALIGN`, `GROWTH_AXIS_MAX_DIGITS`).
    static let alignment = 64
    static let growthDigits = 21

    /// The header's dictionary as `numpy.save` writes it: keys sorted, Python `repr` values.
    var headerDictionary: String {
        let dims = shape.map(String.init)
        let tuple = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var text = "{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(tuple), }"
        if let first = dims.first { text += String(repeating: " ", count: max(0, Self.growthDigits - first.count)) }
        return text
    }

    /// The whole `.npy` file: what `numpy.save(file, array, allow_pickle=False)` writes.
    public var npy: [UInt8] {
        let dictionary = Array(headerDictionary.utf8)
        let headerLength = dictionary.count + 1  // the final newline
        // Format 1.0 has a 2-byte header length; 2.0 (4 bytes) only for headers that do not fit.
        func padding(_ lengthBytes: Int) -> Int {
            Self.alignment - ((Self.magic.count + 2 + lengthBytes + headerLength) % Self.alignment)
        }
        let lengthBytes = headerLength + padding(2) <= Int(UInt16.max) ? 2 : 4
        let padding = padding(lengthBytes)
        let total = headerLength + padding
        var out = Self.magic
        out.reserveCapacity(Self.magic.count + 2 + lengthBytes + total + elements.count)
        out += lengthBytes == 2 ? [1, 0] : [2, 0]
        for i in 0..<lengthBytes { out.append(UInt8(truncatingIfNeeded: total >> (8 * i))) }
        out += dictionary
        out += [UInt8](repeating: 0x20, count: padding)
        out.append(0x0A)
        out += elements
        return out
    }

    /// Parses a whole `.npy` file.
    /// - Throws: ``FlowerError`` `.badArray` for a malformed file, `.unsupportedDType` for an
    ///   element type outside ``DType`` (structured, object or string arrays among them).
    public init(npy bytes: some Collection<UInt8>) throws {
        let b = Array(bytes)
        guard b.count >= 10, Array(b[0..<6]) == Self.magic else {
            throw FlowerError(.badArray, "not a .npy file (no \\x93NUMPY magic)")
        }
        let major = b[6]
        let lengthBytes: Int
        switch (major, b[7]) {
        case (1, 0): lengthBytes = 2
        case (2, 0), (3, 0): lengthBytes = 4
        default: throw FlowerError(.badArray, ".npy format version \(major).\(b[7]) is not supported")
        }
        guard b.count >= 8 + lengthBytes else { throw FlowerError(.badArray, "the .npy header is truncated") }
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(b[8 + i]) << (8 * i) }
        let start = 8 + lengthBytes
        guard headerLength <= b.count - start else {
            throw FlowerError(.badArray, "the .npy header announces \(headerLength) bytes; the file ends before")
        }
        guard let header = String(validating: b[start..<(start + headerLength)], as: UTF8.self) else {
            throw FlowerError(.badArray, "the .npy header is not text")
        }
        let fields = try Self.parseHeader(header)
        guard let (dtype, bigEndian) = DType.parse(descr: fields.descr) else {
            throw FlowerError(.unsupportedDType, "element type '\(fields.descr)' is not supported")
        }
        guard !fields.fortranOrder else {
            throw FlowerError(.badArray, "Fortran-order arrays are not supported (send C-contiguous arrays)")
        }
        var elements = Array(b[(start + headerLength)...])
        if bigEndian {
            let size = dtype.size
            for i in Swift.stride(from: 0, to: elements.count - size + 1, by: size) {
                elements[i..<(i + size)].reverse()
            }
        }
        try self.init(dtype: dtype, shape: fields.shape, elements: elements)
    }

    /// The three entries of a header dictionary, `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    static func parseHeader(_ text: String) throws -> (descr: String, fortranOrder: Bool, shape: [Int]) {
        var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        func fail(_ why: String) -> FlowerError {
            FlowerError(.badArray, "bad .npy header \(text.debugDescription): \(why)")
        }
        func skipSpaces() { while s.first == " " { s.removeFirst() } }
        func expect(_ c: Character) throws {
            skipSpaces()
            guard s.first == c else { throw fail("expected '\(c)'") }
            s.removeFirst()
        }
        func quoted() throws -> String {
            skipSpaces()
            guard let q = s.first, q == "'" || q == "\"" else { throw fail("expected a string") }
            s.removeFirst()
            guard let end = s.firstIndex(of: q) else { throw fail("unterminated string") }
            defer { s = s[s.index(after: end)...] }
            return String(s[..<end])
        }
        var descr: String?
        var fortran: Bool?
        var shape: [Int]?
        try expect("{")
        while true {
            skipSpaces()
            if s.first == "}" {
                s.removeFirst()
                break
            }
            let key = try quoted()
            try expect(":")
            skipSpaces()
            switch key {
            case "descr": descr = try quoted()
            case "fortran_order":
                if s.hasPrefix("True") {
                    fortran = true
                } else if s.hasPrefix("False") {
                    fortran = false
                } else {
                    throw fail("fortran_order is not True or False")
                }
                s = s.dropFirst(fortran! ? 4 : 5)
            case "shape":
                try expect("(")
                var dims: [Int] = []
                while true {
                    skipSpaces()
                    if s.first == ")" {
                        s.removeFirst()
                        break
                    }
                    let digits = s.prefix(while: \.isASCIIDigit)
                    guard !digits.isEmpty, digits.count <= 18, let d = Int(digits) else {
                        throw fail("a dimension is not a non-negative integer")
                    }
                    dims.append(d)
                    s = s.dropFirst(digits.count)
                    skipSpaces()
                    if s.first == "," { s.removeFirst() } else if s.first != ")" { throw fail("expected ',' or ')'") }
                }
                shape = dims
            default: throw fail("unexpected key '\(key)' (structured arrays are not supported)")
            }
            skipSpaces()
            if s.first == "," { s.removeFirst() } else if s.first != "}" { throw fail("expected ',' or '}'") }
        }
        guard s.allSatisfy(\.isWhitespace) else { throw fail("text after the dictionary") }
        guard let descr, let fortran, let shape else { throw fail("descr, fortran_order and shape are all needed") }
        return (descr, fortran, shape)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
