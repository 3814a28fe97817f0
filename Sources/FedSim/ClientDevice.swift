import FedEngine
import FedTensor
import Foundation

/// One virtual client's hardware and link: how fast it trains and talks.
public struct ClientDevice: Sendable, Hashable {
    public var computeMsPerSample: Double
    public var uplinkKbps: Double
    public var downlinkKbps: Double
    public var latencyMs: Double
    /// Probability the client is reachable when selected (1 = always).
    public var availability: Double

    public init(
        computeMsPerSample: Double, uplinkKbps: Double, downlinkKbps: Double, latencyMs: Double,
        availability: Double = 1
    ) {
        self.computeMsPerSample = computeMsPerSample
        self.uplinkKbps = uplinkKbps
        self.downlinkKbps = downlinkKbps
        self.latencyMs = latencyMs
        self.availability = availability
    }

    /// Virtual seconds for one round: download + local compute + upload + latency, where
    /// bytes are the real payload sizes (1 kbit/s = 1,000 bit/s).
    public func roundSeconds(downloadBytes: Int, uploadBytes: Int, samplesProcessed: Int) -> Double {
        Double(downloadBytes) * 8 / (downlinkKbps * 1000) + Double(samplesProcessed) * computeMsPerSample / 1000
            + Double(uploadBytes) * 8 / (uplinkKbps * 1000) + latencyMs / 1000
    }
}

/// Device profiles for every client: drawn from the configured distributions (one random stream
/// per attribute) or read from a trace file.
public enum DeviceProfiles {
    public static func make(clients: Int, devices: ExperimentConfig.Devices, seed: UInt64) throws -> [ClientDevice] {
        if let trace = devices.trace { return try read(trace: trace, clients: clients) }
        var compute = SeededRNG(seed: seed, stream: "devices/compute")
        var up = SeededRNG(seed: seed, stream: "devices/uplink")
        var down = SeededRNG(seed: seed, stream: "devices/downlink")
        var latency = SeededRNG(seed: seed, stream: "devices/latency")
        return (0..<clients).map { _ in
            ClientDevice(
                computeMsPerSample: devices.computeMsPerSample.sample(&compute),
                uplinkKbps: devices.uplinkKbps.sample(&up),
                downlinkKbps: devices.downlinkKbps.sample(&down), latencyMs: devices.latencyMs.sample(&latency))
        }
    }

    /// Parses a trace CSV: `client_id, compute_ms_per_sample, uplink_kbps, downlink_kbps[, availability]`,
    /// with an optional header line. Every client `0..<clients` must appear exactly once.
    public static func read(trace path: String, clients: Int) throws -> [ClientDevice] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigError(key: "devices.trace", "cannot read trace file '\(path)'")
        }
        return try parse(trace: text, clients: clients, path: path)
    }

    static func parse(trace text: String, clients: Int, path: String) throws -> [ClientDevice] {
        var out = [ClientDevice?](repeating: nil, count: clients)
        for (n, rawLine) in text.split(whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if n == 0, Int(fields[0]) == nil { continue }  // header
            func fail(_ what: String) -> ConfigError {
                ConfigError(key: "devices.trace", "\(path) line \(n + 1): \(what)")
            }
            guard fields.count == 4 || fields.count == 5 else {
                throw fail(
                    "expected 4 or 5 comma-separated fields (client id, compute ms/sample, uplink kbit/s, downlink kbit/s[, availability]), found \(fields.count)"
                )
            }
            guard let id = Int(fields[0]), id >= 0, id < clients else {
                throw fail("client id '\(fields[0])' is not in 0..<\(clients)")
            }
            let numbers = fields.dropFirst().map { Double($0) }
            guard numbers.allSatisfy({ $0 != nil && $0!.isFinite && $0! >= 0 }) else {
                throw fail("fields must be non-negative numbers")
            }
            let v = numbers.map { $0! }
            guard v[1] > 0, v[2] > 0 else { throw fail("bandwidths must be positive") }
            let availability = v.count == 4 ? v[3] : 1
            guard availability <= 1 else { throw fail("availability must be in [0, 1], found \(availability)") }
            guard out[id] == nil else { throw fail("client \(id) appears twice") }
            out[id] = ClientDevice(
                computeMsPerSample: v[0], uplinkKbps: v[1], downlinkKbps: v[2], latencyMs: 0, availability: availability
            )
        }
        if let missing = out.firstIndex(where: { $0 == nil }) {
            throw ConfigError(
                key: "devices.trace",
                "\(path): client \(missing) is missing (the trace must list all \(clients) clients)")
        }
        return out.map { $0! }
    }
}
