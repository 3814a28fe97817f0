/// The JSON of Flower's object bodies (RecordDict and ArrayRecord map names to object ids; Array
/// carries its metadata), written as Python's `json.dumps` writes it — `", "` and `": "` as
/// separators, non-ASCII escaped — so that a body and its id come out as Flower's would, and read
/// with the order of keys kept (an ArrayRecord's order is the model's).
enum FlowerJSON: Equatable {
    case string(String)
    case integer(Int)
    case array([FlowerJSON])
    case object([(key: String, value: FlowerJSON)])
    case other

    static func == (a: FlowerJSON, b: FlowerJSON) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): x == y
        case (.integer(let x), .integer(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.map(\.key) == y.map(\.key) && x.map(\.value) == y.map(\.value)
        case (.other, .other): true
        default: false
        }
    }

    /// `json.dumps(value)` with Python's defaults.
    var encoded: String {
        switch self {
        case .string(let s): return Self.quote(s)
        case .integer(let n): return String(n)
        case .array(let items): return "[" + items.map(\.encoded).joined(separator: ", ") + "]"
        case .object(let items):
            return "{" + items.map { Self.quote($0.key) + ": " + $0.value.encoded }.joined(separator: ", ") + "}"
        case .other: return "null"
        }
    }

    /// A JSON string literal as `json.dumps` (`ensure_ascii=True`) writes it.
    static func quote(_ s: String) -> String {
        var out = "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            default:
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out + "\""
    }

    /// Parses a whole document; numbers other than integers, `true`, `false` and `null` become
    /// ``other`` (no body Flower writes has them where a node looks).
    static func parse(_ bytes: some Collection<UInt8>) throws -> FlowerJSON {
        var parser = Parser(bytes: Array(bytes))
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.position == parser.bytes.count else { throw parser.fail("text after the value") }
        return value
    }

    /// The members of an object whose values are all strings, in order.
    var stringMembers: [(key: String, value: String)]? {
        guard case .object(let items) = self else { return nil }
        var out: [(String, String)] = []
        for (key, value) in items {
            guard case .string(let s) = value else { return nil }
            out.append((key, s))
        }
        return out
    }

    /// The member called `key` of an object.
    subscript(key: String) -> FlowerJSON? {
        guard case .object(let items) = self else { return nil }
        return items.first { $0.key == key }?.value
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        func fail(_ why: String) -> FlowerError { FlowerError(.badRecord, "bad JSON at byte \(position): \(why)") }

        mutating func skipSpace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func value(depth: Int) throws -> FlowerJSON {
            guard depth < 32 else { throw fail("nested too deeply") }
            skipSpace()
            guard position < bytes.count else { throw fail("unexpected end") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var items: [(String, FlowerJSON)] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(items)
                }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"))
                    let v = try value(depth: depth + 1)
                    if items.contains(where: { $0.0 == key }) { throw fail("duplicate key \(key.debugDescription)") }
                    items.append((key, v))
                    skipSpace()
                    guard position < bytes.count else { throw fail("unterminated object") }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                    } else {
                        try expect(UInt8(ascii: "}"))
                        return .object(items)
                    }
                }
            case UInt8(ascii: "["):
                position += 1
                var items: [FlowerJSON] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(items)
                }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard position < bytes.count else { throw fail("unterminated array") }
                    if bytes[position] == UInt8(ascii: ",") {
                        position += 1
                    } else {
                        try expect(UInt8(ascii: "]"))
                        return .array(items)
                    }
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = position
                position += 1
                while position < bytes.count, "0123456789.eE+-".utf8.contains(bytes[position]) { position += 1 }
                let text = String(decoding: bytes[start..<position], as: UTF8.self)
                if let n = Int(text) { return .integer(n) }
                guard Double(text) != nil else { throw fail("bad number \(text)") }
                return .other
            default:
                for word in ["true", "false", "null"] where bytes[position...].starts(with: word.utf8) {
                    position += word.utf8.count
                    return .other
                }
                throw fail("unexpected character")
            }
        }

        mutating func expect(_ c: UInt8) throws {
            guard position < bytes.count, bytes[position] == c else {
                throw fail("expected '\(Character(Unicode.Scalar(c)))'")
            }
            position += 1
        }

        mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            var units: [UInt16] = []
            var raw: [UInt8] = []
            func flush() {
                units += String(decoding: raw, as: UTF8.self).utf16
                raw.removeAll()
            }
            while true {
                guard position < bytes.count else { throw fail("unterminated string") }
                let c = bytes[position]
                position += 1
                switch c {
                case UInt8(ascii: "\""):
                    flush()
                    return String(decoding: units, as: UTF16.self)
                case UInt8(ascii: "\\"):
                    flush()
                    guard position < bytes.count else { throw fail("unterminated escape") }
                    let e = bytes[position]
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""): units.append(0x22)
                    case UInt8(ascii: "\\"): units.append(0x5C)
                    case UInt8(ascii: "/"): units.append(0x2F)
                    case UInt8(ascii: "n"): units.append(0x0A)
                    case UInt8(ascii: "r"): units.append(0x0D)
                    case UInt8(ascii: "t"): units.append(0x09)
                    case UInt8(ascii: "b"): units.append(0x08)
                    case UInt8(ascii: "f"): units.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard position + 4 <= bytes.count,
                            let u = UInt16(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16)
                        else { throw fail("bad \\u escape") }
                        units.append(u)
                        position += 4
                    default: throw fail("bad escape")
                    }
                case 0..<0x20: throw fail("control character in a string")
                default: raw.append(c)
                }
            }
        }
    }
}
