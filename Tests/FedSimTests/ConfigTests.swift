import Testing

@testable import FedEngine
@testable import FedSim

@Suite struct ConfigTests {
    let minimal = """
        name: t
        rounds: 3
        model: mlp
        partition: {scheme: dirichlet, clients: 20, alpha: 0.3}
        clients_per_round: 5
        """

    @Test func defaultsAreFilledIn() throws {
        let c = try ExperimentConfig.parse(yaml: minimal)
        #expect(c.rounds == 3)
        #expect(c.partition.alpha == 0.3)
        #expect(c.partition.minSize == 10)
        #expect(c.strategy == "fedavg")
        #expect(c.local.batchSize == 32)
        #expect(c.local.learningRate == 0.01)
        #expect(c.evaluation.every == 1)
        #expect(c.devices.uplinkKbps == .constant(100_000))
        #expect(c.deadlineSeconds == nil)
    }

    @Test func overridesReachNestedKeysAndParseValues() throws {
        let c = try ExperimentConfig.parse(
            yaml: minimal,
            overrides: [
                "rounds=7", "seed=42", "workers=1", "local.lr=0.05", "strategy.name=fedavgm",
                "devices.uplink_kbps=500", "deadline_s=12.5",
            ])
        #expect(c.rounds == 7)
        #expect(c.seed == 42)
        #expect(c.workers == 1)
        #expect(c.local.learningRate == 0.05)
        #expect(c.strategy == "fedavgm")
        #expect(c.devices.uplinkKbps == .constant(500))
        #expect(c.deadlineSeconds == 12.5)
    }

    @Test func resolvedYAMLParsesBackToTheSameConfig() throws {
        let c = try ExperimentConfig.parse(
            yaml: minimal, overrides: ["strategy.momentum=0.8", "strategy.name=fedavgm"])
        let again = try ExperimentConfig.parse(yaml: c.yaml())
        #expect(again.yaml() == c.yaml())
        #expect(again.strategyParameters == ["momentum": 0.8])
    }

    /// Each bad input names the key and what is allowed.
    @Test(arguments: [
        ("rounds: 0", "rounds", "out of range"),
        ("modle: cnn", "modle", "unknown key"),
        ("model: vgg", "model", "one of: mlp, cnn, lenet5, resnet"),
        ("partition: {scheme: zipf, clients: 20}", "partition.scheme", "one of: iid, dirichlet, shards, quantity"),
        ("partition: {clients: 20, alhpa: 1}", "partition.alhpa", "unknown key"),
        ("local: {lr: fast}", "local.lr", "expected a number"),
        ("clients_per_round: 50", "clients_per_round", "out of range"),
        (
            "devices: {uplink_kbps: {distribution: pareto}}", "devices.uplink_kbps.distribution",
            "constant, uniform, lognormal"
        ),
        ("strategy: {name: fedsgd}", "strategy.name", "fedavg, fedavgm"),
        ("dropout: 1.5", "dropout", "out of range"),
    ])
    func badValuesNameTheKey(_ line: String, _ key: String, _ hint: String) {
        var yaml = minimal
        if line.hasPrefix("rounds") || line.hasPrefix("model:") || line.hasPrefix("partition")
            || line.hasPrefix("clients_per_round")
        {
            let k = String(line.prefix { $0 != ":" })
            yaml = yaml.split(separator: "\n").filter { !$0.hasPrefix(k + ":") }.joined(separator: "\n")
        }
        yaml += "\n" + line
        #expect {
            _ = try ExperimentConfig.parse(yaml: yaml)
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.key == key && e.description.contains(hint)
        }
    }

    @Test func malformedOverrideAndDocumentAreErrors() {
        #expect(throws: ConfigError.self) { try ExperimentConfig.parse(yaml: minimal, overrides: ["rounds"]) }
        #expect(throws: ConfigError.self) { try ExperimentConfig.parse(yaml: "- a\n- b") }
        #expect(throws: ConfigError.self) { try ExperimentConfig.parse(yaml: "rounds: [1,") }
        #expect(throws: ConfigError.self) { try ExperimentConfig.load(path: "/nonexistent/experiment.yaml") }
    }

    @Test func shippedExperimentsParse() throws {
        let dir = String("\(#filePath)".split(separator: "/").dropLast(3).joined(separator: "/"))
        for s in ["fedavg", "fedavgm", "fedprox", "scaffold", "fednova", "fedadam", "fedyogi", "fedadagrad"] {
            let c = try ExperimentConfig.load(path: "/\(dir)/experiments/fmnist-\(s)-flower.yaml")
            #expect(c.strategy == s)
            #expect(c.partition.clients == 100 && c.clientsPerRound == 10 && c.local.learningRate == 0.01)
        }
    }
}

@Suite struct VirtualClockTests {
    @Test func roundTimeIsDownloadPlusComputePlusUploadPlusLatency() {
        let d = ClientDevice(computeMsPerSample: 2, uplinkKbps: 1000, downlinkKbps: 8000, latencyMs: 50)
        // download 1,000,000 B · 8 / 8,000,000 bit/s = 1 s; compute 500 · 2 ms = 1 s;
        // upload 250,000 B · 8 / 1,000,000 bit/s = 2 s; latency 0.05 s.
        #expect(
            abs(d.roundSeconds(downloadBytes: 1_000_000, uploadBytes: 250_000, samplesProcessed: 500) - 4.05) < 1e-12)
    }

    @Test func traceFileParsesAndRejectsBadLines() throws {
        let ok = "client,compute_ms,up,down,avail\n1, 2.5, 1000, 5000\n0, 1, 200, 800, 0.5\n"
        let devices = try DeviceProfiles.parse(trace: ok, clients: 2, path: "t.csv")
        #expect(
            devices[0]
                == ClientDevice(
                    computeMsPerSample: 1, uplinkKbps: 200, downlinkKbps: 800, latencyMs: 0, availability: 0.5))
        #expect(devices[1].computeMsPerSample == 2.5)
        for bad in [
            "0,1,2\n1,1,1,1", "0,1,1,1\n0,1,1,1", "0,1,1,1", "0,1,0,1\n1,1,1,1", "0,1,1,1,2\n1,1,1,1",
            "0,x,1,1\n1,1,1,1",
        ] {
            #expect(throws: ConfigError.self) { try DeviceProfiles.parse(trace: bad, clients: 2, path: "t.csv") }
        }
    }

    @Test func sampledProfilesAreDeterministicAndFollowTheDistribution() throws {
        let c = try ExperimentConfig.parse(
            yaml: "rounds: 1\nmodel: mlp\npartition: {clients: 2000}\nclients_per_round: 1\n"
                + "devices: {uplink_kbps: {distribution: lognormal, median: 1000, sigma: 1, min: 100, max: 50000}}")
        let a = try DeviceProfiles.make(clients: 2000, devices: c.devices, seed: 1)
        #expect(a == (try DeviceProfiles.make(clients: 2000, devices: c.devices, seed: 1)))
        let up = a.map(\.uplinkKbps).sorted()
        #expect(up.first! >= 100 && up.last! <= 50000)
        #expect(abs(up[1000] / 1000 - 1) < 0.1)  // median of the log-normal
    }
}

@Suite struct DensePayloadTests {
    @Test func roundTripsAndHasTheFormulaSize() throws {
        let values: [Float] = [1, -2.5, 0, .leastNonzeroMagnitude, 3e38]
        var bytes: [UInt8] = []
        values.withUnsafeBufferPointer { DensePayload.encode($0, into: &bytes) }
        #expect(bytes.count == 16 + 4 * values.count)
        var out = [Float](repeating: 9, count: values.count)
        try out.withUnsafeMutableBufferPointer { try DensePayload.decode(bytes, into: $0) }
        #expect(out == values)
    }

    @Test func hostilePayloadsAreErrors() {
        var bytes: [UInt8] = []
        [Float](repeating: 1, count: 4).withUnsafeBufferPointer { DensePayload.encode($0, into: &bytes) }
        var out = [Float](repeating: 0, count: 4)
        var wrongCount = [Float](repeating: 0, count: 5)
        var nan = bytes
        nan[16..<20] = [0x00, 0x00, 0xC0, 0x7F]
        var badMagic = bytes
        badMagic[0] = 0
        for payload in [Array(bytes.prefix(10)), Array(bytes.dropLast()), badMagic, nan, bytes + [0]] {
            #expect(throws: PayloadError.self) {
                try out.withUnsafeMutableBufferPointer { try DensePayload.decode(payload, into: $0) }
            }
        }
        #expect(throws: PayloadError.self) {
            try wrongCount.withUnsafeMutableBufferPointer { try DensePayload.decode(bytes, into: $0) }
        }
    }
}
