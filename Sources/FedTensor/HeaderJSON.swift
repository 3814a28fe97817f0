// `Sendable` is stated, not inferred: inferring it through the labelled tuple trips a "circular reference"
// error in Swift 6.3.
/// A JSON value of the subset a safetensors header uses: objects, arrays, strings and non-negative
/// integers. Parsing is strict and bounded, because headers come from untrusted files.
enum HeaderJSON: Sendable {
    /// Members in document order; duplicate keys are kept for the caller to reject with context.
    case object([(key: String, value: HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    case integer(UInt64)

    /// Deeper nesting than any header needs (3) is rejected before it can exhaust the stack.
    static let maximumDepth = 32

    /// Parses `bytes` as exactly one JSON value, optionally surrounded by whitespace.
    /// - Throws: `SafeTensorsError.Code.invalidJSON` with the byte offset of the problem.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> HeaderJSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < bytes.count { throw parser.error(expected: "end of header after the top-level value") }
        return value
    }

    /// What kind of value this is, for error messages.
    var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .integer: "an integer"
        }
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        func error(expected: String) -> SafeTensorsError {
            let found: String
            if index >= bytes.count {
                found = "end of header"
            } else if (0x21...0x7E).contains(bytes[index]) {
                found = "'\(Character(Unicode.Scalar(bytes[index])))'"
            } else {
                found = "byte 0x" + String(bytes[index], radix: 16)
            }
            return SafeTensorsError(.invalidJSON, "header JSON at byte \(index): expected \(expected), found \(found)")
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func parseValue(depth: Int) throws -> HeaderJSON {
            guard index < bytes.count else { throw error(expected: "a value") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try parseInteger())
            default:
                throw error(expected: "an object, array, string or non-negative integer (all a header may hold)")
            }
        }

        mutating func parseObject(depth: Int) throws -> HeaderJSON {
            guard depth <= HeaderJSON.maximumDepth else { throw error(expected: "nesting at most 32 deep") }
            index += 1  // "{"
            var members: [(key: String, value: HeaderJSON)] = []
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return .object(members) }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error(expected: "'\"' starting an object key")
                }
                let key = try parseString()
                skipWhitespace()
                guard consume(UInt8(ascii: ":")) else { throw error(expected: "':' after an object key") }
                skipWhitespace()
                members.append((key, try parseValue(depth: depth)))
                skipWhitespace()
                if consume(UInt8(ascii: "}")) { return .object(members) }
                guard consume(UInt8(ascii: ",")) else { throw error(expected: "',' or '}' in an object") }
            }
        }

        mutating func parseArray(depth: Int) throws -> HeaderJSON {
            guard depth <= HeaderJSON.maximumDepth else { throw error(expected: "nesting at most 32 deep") }
            index += 1  // "["
            var elements: [HeaderJSON] = []
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
                if consume(UInt8(ascii: "]")) { return .array(elements) }
                guard consume(UInt8(ascii: ",")) else { throw error(expected: "',' or ']' in an array") }
            }
        }

        /// Digits with no sign, fraction, exponent or leading zero, fitting in `UInt64`.
        mutating func parseInteger() throws -> UInt64 {
            let start = index
            var value: UInt64 = 0
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else {
                    index = start
                    throw error(expected: "an integer below 2^64")
                }
                value = sum
                index += 1
            }
            if bytes[start] == UInt8(ascii: "0") && index - start > 1 {
                index = start
                throw error(expected: "an integer without leading zeros")
            }
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
                throw error(expected: "an integer (a header has no fractions or exponents)")
            }
            return value
        }

        /// A string starting at the opening quote. The caller has checked the header is valid UTF-8, and
        /// quote and backslash never occur inside a multi-byte sequence, so raw runs copy through whole.
        mutating func parseString() throws -> String {
            index += 1  // opening quote
            var utf8: [UInt8] = []
            while true {
                guard index < bytes.count else { throw error(expected: "'\"' closing a string") }
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(decoding: utf8, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    index += 1
                    try parseEscape(into: &utf8)
                case 0..<0x20:
                    throw error(expected: "a control character in a string to be escaped")
                default:
                    utf8.append(byte)
                    index += 1
                }
            }
        }

        /// One escape after its backslash, appended to `utf8` as UTF-8.
        mutating func parseEscape(into utf8: inout [UInt8]) throws {
            guard index < bytes.count else { throw error(expected: "an escape character") }
            let simple: UInt8? =
                switch bytes[index] {
                case UInt8(ascii: "\""): 0x22
                case UInt8(ascii: "\\"): 0x5C
                case UInt8(ascii: "/"): 0x2F
                case UInt8(ascii: "b"): 0x08
                case UInt8(ascii: "f"): 0x0C
                case UInt8(ascii: "n"): 0x0A
                case UInt8(ascii: "r"): 0x0D
                case UInt8(ascii: "t"): 0x09
                default: nil
                }
            if let simple {
                utf8.append(simple)
                index += 1
                return
            }
            guard bytes[index] == UInt8(ascii: "u") else {
                throw error(expected: "one of \" \\ / b f n r t u after a backslash")
            }
            index += 1
            var scalarValue = try parseHex4()
            if (0xD800...0xDBFF).contains(scalarValue) {
                guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                    throw error(expected: "'\\u' with a low surrogate after a high surrogate")
                }
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    index -= 4
                    throw error(expected: "a low surrogate (DC00-DFFF) after a high surrogate")
                }
                scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(scalarValue) else {
                index -= 4
                throw error(expected: "a Unicode scalar, not a lone low surrogate")
            }
            UTF8.encode(scalar) { utf8.append($0) }
        }

        mutating func parseHex4() throws -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard index < bytes.count else { throw error(expected: "4 hex digits after '\\u'") }
                let digit: UInt8
                switch bytes[index] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = bytes[index] - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = bytes[index] - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = bytes[index] - UInt8(ascii: "A") + 10
                default: throw error(expected: "4 hex digits after '\\u'")
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }
    }
}
