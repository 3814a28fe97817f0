import Foundation

/// Typed, validating access to one mapping of a parsed YAML document. Remembers which keys were
/// read so that `finish()` can reject the rest as unknown, naming the allowed ones.
struct ConfigReader {
    let path: String
    let values: [String: Any]
    private(set) var read: Set<String> = []

    init(_ values: [String: Any], path: String = "") {
        self.values = values
        self.path = path
    }

    func key(_ k: String) -> String { path.isEmpty ? k : path + "." + k }

    func has(_ k: String) -> Bool {
        guard let v = values[k] else { return false }
        return !(v is NSNull)
    }

    mutating func raw(_ k: String) -> Any? {
        read.insert(k)
        guard let v = values[k], !(v is NSNull) else { return nil }
        return v
    }

    mutating func string(_ k: String, default d: String? = nil, allowed: [String]? = nil) throws -> String {
        guard let v = raw(k) else {
            if let d { return d }
            throw ConfigError(
                key: key(k), "missing" + (allowed.map { "; one of: " + $0.joined(separator: ", ") } ?? ""))
        }
        let s = "\(v)"
        if let allowed, !allowed.contains(s) {
            throw ConfigError(key: key(k), "'\(s)' is not allowed; one of: \(allowed.joined(separator: ", "))")
        }
        return s
    }

    /// One of the cases of `E`, by raw value; the error lists them all.
    mutating func choice<E: RawRepresentable & CaseIterable>(_ k: String, default d: E? = nil) throws -> E
    where E.RawValue == String {
        let names = E.allCases.map(\.rawValue)
        let s = try string(k, default: d?.rawValue, allowed: names)
        return E(rawValue: s)!
    }

    mutating func optionalString(_ k: String) -> String? { raw(k).map { "\($0)" } }

    mutating func int(_ k: String, default d: Int? = nil, range: ClosedRange<Int>? = nil) throws -> Int {
        guard let v = raw(k) else {
            if let d { return d }
            throw ConfigError(key: key(k), "missing (an integer)")
        }
        let n: Int
        if let i = v as? Int {
            n = i
        } else if let d = v as? Double, d == d.rounded(), abs(d) < 1e15 {
            n = Int(d)
        } else if let s = v as? String, let i = Int(s) {
            n = i
        } else {
            throw ConfigError(key: key(k), "expected an integer, found '\(v)'")
        }
        if let range, !range.contains(n) {
            throw ConfigError(key: key(k), "\(n) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    mutating func optionalInt(_ k: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        has(k)
            ? try int(k, range: range)
            : {
                read.insert(k)
                return nil
            }()
    }

    mutating func double(_ k: String, default d: Double? = nil, range: ClosedRange<Double>? = nil) throws -> Double {
        guard let v = raw(k) else {
            if let d { return d }
            throw ConfigError(key: key(k), "missing (a number)")
        }
        let x: Double
        if let d = v as? Double {
            x = d
        } else if let i = v as? Int {
            x = Double(i)
        } else if let s = v as? String, let d = Double(s) {
            x = d
        } else {
            throw ConfigError(key: key(k), "expected a number, found '\(v)'")
        }
        guard x.isFinite else { throw ConfigError(key: key(k), "must be finite, found \(x)") }
        if let range, !range.contains(x) {
            throw ConfigError(key: key(k), "\(x) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return x
    }

    mutating func optionalDouble(_ k: String, range: ClosedRange<Double>? = nil) throws -> Double? {
        has(k)
            ? try double(k, range: range)
            : {
                read.insert(k)
                return nil
            }()
    }

    mutating func bool(_ k: String, default d: Bool) throws -> Bool {
        guard let v = raw(k) else { return d }
        if let b = v as? Bool { return b }
        if let s = v as? String, ["true", "false"].contains(s) { return s == "true" }
        throw ConfigError(key: key(k), "expected true or false, found '\(v)'")
    }

    /// A nested mapping (empty if absent).
    mutating func section(_ k: String) throws -> ConfigReader {
        guard let v = raw(k) else { return ConfigReader([:], path: key(k)) }
        guard let m = v as? [String: Any] else {
            throw ConfigError(key: key(k), "expected a mapping of keys to values, found '\(v)'")
        }
        return ConfigReader(m, path: key(k))
    }

    /// Numeric entries of a mapping, for open-ended parameter sets (strategy parameters).
    mutating func numbers(except: Set<String>) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for k in values.keys.sorted() where !except.contains(k) {
            out[k] = try double(k)
        }
        return out
    }

    /// Throws for keys that were never read.
    func finish() throws {
        let unknown = values.keys.filter { !read.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ConfigError(
                key: key(unknown[0]),
                "unknown key; allowed here: \(read.sorted().joined(separator: ", "))")
        }
    }
}
