/// An IDX file of unsigned bytes (the format of MNIST and Fashion-MNIST), gzipped or raw.
///
/// Layout: two zero bytes, the element type (only `0x08`, unsigned byte, is supported), the number
/// of dimensions, each dimension as a big-endian `UInt32`, then exactly the product of the
/// dimensions in bytes.
///
/// ```swift
/// let labels = try IDXFile(contentsOf: "/data/train-labels-idx1-ubyte.gz")
/// labels.dims          // [60000]
/// labels.payload.first // 9
/// ```
public struct IDXFile: Sendable {
    /// The IDX type byte for unsigned 8-bit elements.
    public static let unsignedByteType: UInt8 = 0x08

    /// The file the data came from (named in errors).
    public let path: String

    /// The dimensions, outermost first.
    public let dims: [Int]

    /// The elements in row-major order; exactly `dims.reduce(1, *)` bytes.
    public let payload: ArraySlice<UInt8>

    /// Reads and parses the IDX file at `path`, inflating it first if it is gzipped.
    ///
    /// - Throws: ``DataError`` with code `missingFile`, `unreadableFile`, `corruptGzip`, `badMagic`,
    ///   `unsupportedType`, `badHeader`, `truncated` or `trailingData`.
    public init(contentsOf path: String) throws {
        try self.init(parsing: DataFile.contents(path: path), path: path)
    }

    /// Parses the (already inflated) IDX `bytes`; `path` is only used in error messages.
    ///
    /// - Throws: ``DataError`` with code `badMagic`, `unsupportedType`, `badHeader`, `truncated` or
    ///   `trailingData`.
    public init(parsing bytes: [UInt8], path: String) throws {
        self.path = path
        guard bytes.count >= 4 else {
            throw DataError(
                code: .truncated,
                message: "IDX file '\(path)' is \(bytes.count) bytes long; expected at least the 4-byte header",
                path: path)
        }
        guard bytes[0] == 0 && bytes[1] == 0 else {
            throw DataError(
                code: .badMagic,
                message: "'\(path)' is not an IDX file: expected it to start with bytes 00 00, found "
                    + "\(hex(bytes[0])) \(hex(bytes[1]))",
                path: path)
        }
        guard bytes[2] == Self.unsignedByteType else {
            throw DataError(
                code: .unsupportedType,
                message: "IDX file '\(path)' has element type \(hex(bytes[2])) (\(Self.typeName(bytes[2]))); "
                    + "only 0x08 (unsigned byte) is supported",
                path: path)
        }
        let rank = Int(bytes[3])
        guard rank >= 1 else {
            throw DataError(
                code: .badHeader, message: "IDX file '\(path)' declares 0 dimensions; expected at least 1",
                path: path)
        }
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw DataError(
                code: .truncated,
                message: "IDX file '\(path)' declares \(rank) dimensions, so its header needs \(headerSize) "
                    + "bytes; found only \(bytes.count)",
                path: path)
        }
        var dims: [Int] = []
        dims.reserveCapacity(rank)
        var elementCount = 1
        var overflow = false
        for d in 0..<rank {
            let o = 4 + 4 * d
            let dim = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            dims.append(dim)
            if !overflow {
                (elementCount, overflow) = elementCount.multipliedReportingOverflow(by: dim)
            }
        }
        guard !overflow else {
            throw DataError(
                code: .badHeader,
                message: "IDX file '\(path)' declares dimensions \(dims) whose product overflows Int; "
                    + "expected a size that fits in memory",
                path: path)
        }
        let found = bytes.count - headerSize
        guard found >= elementCount else {
            throw DataError(
                code: .truncated,
                message: "IDX file '\(path)' is truncated: dimensions \(dims) need \(elementCount) payload "
                    + "bytes, found \(found) (\(elementCount - found) missing)",
                path: path)
        }
        guard found == elementCount else {
            throw DataError(
                code: .trailingData,
                message: "IDX file '\(path)' has extra data: dimensions \(dims) need \(elementCount) payload "
                    + "bytes, found \(found) (\(found - elementCount) extra)",
                path: path)
        }
        self.dims = dims
        self.payload = bytes[headerSize...]
    }

    private static func typeName(_ type: UInt8) -> String {
        switch type {
        case 0x09: "signed byte"
        case 0x0B: "16-bit integer"
        case 0x0C: "32-bit integer"
        case 0x0D: "32-bit float"
        case 0x0E: "64-bit float"
        default: "unknown type"
        }
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return "0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
}
