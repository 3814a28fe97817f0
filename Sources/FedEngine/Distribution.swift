import FedTensor

/// A distribution of a positive device attribute (compute speed, bandwidth, latency).
public enum Distribution: Sendable, Hashable, CustomStringConvertible {
    case constant(Double)
    case uniform(low: Double, high: Double)
    /// Log-normal with the given median and σ of the underlying normal, optionally clamped.
    case logNormal(median: Double, sigma: Double, min: Double?, max: Double?)

    public func sample(_ rng: inout SeededRNG) -> Double {
        switch self {
        case .constant(let v):
            return v
        case .uniform(let lo, let hi):
            return lo + (hi - lo) * Double(rng.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        case .logNormal(let median, let sigma, let lo, let hi):
            var v = median * exp(sigma * Double(rng.nextNormal()))
            if let lo { v = Swift.max(v, lo) }
            if let hi { v = Swift.min(v, hi) }
            return v
        }
    }

    public var description: String {
        switch self {
        case .constant(let v): return "constant(\(v))"
        case .uniform(let lo, let hi): return "uniform(\(lo), \(hi))"
        case .logNormal(let m, let s, let lo, let hi):
            return
                "lognormal(median \(m), sigma \(s)\(lo.map { ", min \($0)" } ?? "")\(hi.map { ", max \($0)" } ?? ""))"
        }
    }

    /// As a YAML mapping.
    var yaml: [String: Any] {
        switch self {
        case .constant(let v): return ["distribution": "constant", "value": v]
        case .uniform(let lo, let hi): return ["distribution": "uniform", "low": lo, "high": hi]
        case .logNormal(let m, let s, let lo, let hi):
            var d: [String: Any] = ["distribution": "lognormal", "median": m, "sigma": s]
            if let lo { d["min"] = lo }
            if let hi { d["max"] = hi }
            return d
        }
    }

    /// Reads `{distribution: constant|uniform|lognormal, ...}` or a bare number (constant).
    /// - Parameter allowZero: latency may be 0; speeds and bandwidths must be positive.
    static func parse(
        _ reader: inout ConfigReader, _ key: String, default d: Distribution, allowZero: Bool = false
    ) throws -> Distribution {
        let low = allowZero ? 0 : 1e-12
        guard reader.has(key) else {
            _ = reader.raw(key)
            return d
        }
        if let number = reader.values[key] as? Double ?? (reader.values[key] as? Int).map(Double.init) {
            _ = reader.raw(key)
            guard number >= low else {
                throw ConfigError(
                    key: reader.key(key), "must be \(allowZero ? "non-negative" : "positive"), found \(number)")
            }
            return .constant(number)
        }
        var r = try reader.section(key)
        let kind = try r.string("distribution", allowed: ["constant", "uniform", "lognormal"])
        let result: Distribution
        switch kind {
        case "constant":
            result = .constant(try r.double("value", range: low...Double.greatestFiniteMagnitude))
        case "uniform":
            let lo = try r.double("low", range: low...Double.greatestFiniteMagnitude)
            let hi = try r.double("high", range: lo...Double.greatestFiniteMagnitude)
            result = .uniform(low: lo, high: hi)
        default:
            result = .logNormal(
                median: try r.double("median", range: 1e-12...Double.greatestFiniteMagnitude),
                sigma: try r.double("sigma", range: 0...10),
                min: try r.optionalDouble("min", range: 0...Double.greatestFiniteMagnitude),
                max: try r.optionalDouble("max", range: 0...Double.greatestFiniteMagnitude))
        }
        try r.finish()
        return result
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
