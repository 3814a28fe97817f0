import FedCore
import FedData
import FedNN
import Foundation
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
        ("model: vgg", "model", "one of: mlp, mlp-WIDTH (1...65536), cnn, lenet5, resnet"),
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

@Suite struct TypedConfigTests {
    let base = """
        name: t
        rounds: 1
        model: mlp
        clients_per_round: 2
        """

    @Test func namesComeFromTheirRegistriesAndParseIntoTypes() throws {
        let c = try ExperimentConfig.parse(
            yaml: base + "\npartition: {scheme: quantity, clients: 4, sigma: 0.5}\n"
                + "compression: {uplink: {codec: topk, error_feedback: ef21}, aggregation: opwa}")
        #expect(c.partition.scheme == .quantity)
        #expect(c.partition.partitionScheme == .quantitySkew(sigma: 0.5))
        #expect(c.compression.uplink?.errorFeedback == .ef21)
        #expect(c.compression.aggregation == .opwa)
        // Every registered strategy, model and codec is accepted, and the error for an unknown one lists them.
        for name in StrategyFactory.strategyNames {
            #expect(
                try ExperimentConfig.parse(
                    yaml: base
                        + "\npartition: {clients: 4}\nstrategy: {name: \(name)\(name == "fedimpro" ? ", cut: net.2" : "")}"
                )
                .strategy == name)
        }
        for model in ModelZoo.names {
            #expect(
                try ExperimentConfig.parse(
                    yaml: base.replacingOccurrences(of: "mlp", with: model)
                        + "\npartition: {clients: 4}"
                ).model == model)
        }
        let error = #expect(throws: ConfigError.self) {
            try ExperimentConfig.parse(yaml: base + "\npartition: {clients: 4}\nstrategy: {name: fedsgd}")
        }
        #expect(error?.message.contains(StrategyFactory.strategyNames.joined(separator: ", ")) == true)
    }

    @Test func aStrategyParameterOfAnotherStrategyIsAnErrorNotIgnored() throws {
        let error = #expect(throws: ConfigError.self) {
            try ExperimentConfig.parse(yaml: base + "\npartition: {clients: 4}\nstrategy: {name: fedavg, mu: 0.1}")
        }
        #expect(error?.key == "strategy")
        #expect(error?.message.contains("no parameter 'mu'") == true)
        let range = #expect(throws: ConfigError.self) {
            try ExperimentConfig.parse(yaml: base + "\npartition: {clients: 4}\nstrategy: {name: fedavgm, momentum: 1}")
        }
        #expect(range?.message.contains("[0, 1)") == true)
        #expect(
            try ExperimentConfig.parse(yaml: base + "\npartition: {clients: 4}\nstrategy: {name: fedprox, mu: 0.1}")
                .strategyParameters == ["mu": 0.1])
    }
}
