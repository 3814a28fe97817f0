import FedTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `fedswift serve` and `fedswift join` as separate processes over loopback HTTP/2, on real
/// Fashion-MNIST: they end with the simulator's model, byte for byte, also when the coordinator is
/// killed mid-round and started again, or a client process dies mid-round.
@Suite(.serialized) struct NetworkProcessTests {
    static let experiment = """
        name: net
        seed: 3
        rounds: 4
        workers: 2
        model: mlp
        partition: {scheme: dirichlet, clients: 4, alpha: 0.5}
        clients_per_round: 2
        local: {steps: 3, batch_size: 16, lr: 0.05}
        evaluation: {every: 1, samples: 300}
        strategy: {name: scaffold}
        compression: {uplink: {codec: topk, ratio: 0.1, error_feedback: residual}}

        """

    /// The port a coordinator printed, once it is listening.
    static func port(of coordinator: ChildProcess) throws -> Int {
        coordinator.wait(for: 60) { $0.output.contains("listening on") || !$0.process.isRunning }
        let line = try #require(coordinator.output.split(separator: "\n").first { $0.contains("listening on") })
        let address = try #require(line.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") })
        return try #require(Int(address.split(separator: ":")[1].trimmingCharacters(in: .punctuationCharacters)))
    }

    func model(_ dir: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors")) }

    /// Each metrics row's test accuracy and loss, as written.
    func evaluations(_ dir: String) throws -> [[Double]] {
        try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            let row = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return [row["test_accuracy"], row["test_loss"]].compactMap { ($0 as? NSNumber)?.doubleValue }
        }
    }

    @Test func servedRoundsAreTheSimulatorsAndSurviveACoordinatorKilledMidRound() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("net.yaml")
        try Self.experiment.write(toFile: file, atomically: true, encoding: .utf8)
        let sim = try ChildProcess.fedswift(["simulate", file, "--out", dir.file("sim")])
        #expect(sim.status == 0, "\(sim.output)")
        let expected = try model(dir.file("sim"))
        let evaluated = try evaluations(dir.file("sim"))
        #expect(evaluated.count == 4 && evaluated.allSatisfy { $0.count == 2 }, "\(evaluated)")

        // Straight through.
        let coordinator = try ChildProcess([
            "serve", file, "--listen", "127.0.0.1:0", "--insecure", "--state-dir", dir.file("net"),
        ])
        let port = try Self.port(of: coordinator)
        let clients = try ChildProcess([
            "join", file, "--server", "127.0.0.1:\(port)", "--client", "0", "--virtual-clients", "4", "--insecure",
        ])
        let served = coordinator.finish(timeout: 120)
        let joined = clients.finish(timeout: 60)
        #expect(served.status == 0 && !served.timedOut, "\(served.output)")
        #expect(joined.status == 0 && joined.output.contains("the run is over"), "\(joined.output)")
        let sameStraight = try model(dir.file("net")) == expected
        #expect(sameStraight, "the served run's model differs from the simulator's")
        // Each round's evaluation ran beside the next round's training; the rows are the same.
        #expect(try evaluations(dir.file("net")) == evaluated)

        // The coordinator killed with SIGKILL while round 3's clients train, then started again on
        // the same port and state directory; the clients wait and reconnect by themselves.
        let first = try ChildProcess(
            ["serve", file, "--listen", "127.0.0.1:0", "--insecure", "--state-dir", dir.file("killed")],
            environment: ["FEDSWIFT_FAULT": "round-trained@3"])
        let port2 = try Self.port(of: first)
        let patient = try ChildProcess([
            "join", file, "--server", "127.0.0.1:\(port2)", "--client", "0", "--virtual-clients", "4", "--insecure",
        ])
        let killed = first.finish(timeout: 120)
        #expect(killed.signalled && killed.status == SIGKILL, "\(killed.output)")
        let second = try ChildProcess([
            "serve", file, "--listen", "127.0.0.1:\(port2)", "--insecure", "--state-dir", dir.file("killed"),
        ])
        let resumed = second.finish(timeout: 120)
        #expect(resumed.status == 0 && resumed.output.contains("resuming after round 2"), "\(resumed.output)")
        let rejoined = patient.finish(timeout: 60)
        #expect(rejoined.status == 0, "\(rejoined.output)")
        let sameResumed = try model(dir.file("killed")) == expected
        #expect(sameResumed, "the resumed served run's model differs from the simulator's")
        // Round 2's checkpoint was written while its evaluation ran: the restart evaluated it.
        #expect(try evaluations(dir.file("killed")) == evaluated)

        // SIGTERM while round 3's clients train (the process sends it to itself at that moment):
        // the coordinator finishes the round in progress, checkpoints it and exits with 128 + 15;
        // the clients wait for it and finish the run with the restarted one. Its Prometheus
        // endpoint answers while it runs.
        let termed = try ChildProcess(
            [
                "serve", file, "--listen", "127.0.0.1:0", "--insecure", "--state-dir", dir.file("termed"),
                "--metrics", "127.0.0.1:0",
            ], environment: ["FEDSWIFT_FAULT": "round-trained@3:TERM"])
        let port3 = try Self.port(of: termed)
        let metricsLine = try #require(termed.output.split(separator: "\n").first { $0.hasPrefix("metrics at ") })
        let url = try #require(URL(string: String(metricsLine.dropFirst("metrics at ".count))))
        let before = try String(contentsOf: url, encoding: .utf8)
        #expect(before.contains("fedswift_connected_clients 0.0"), "\(before)")
        let waiting = try ChildProcess([
            "join", file, "--server", "127.0.0.1:\(port3)", "--client", "0", "--virtual-clients", "4", "--insecure",
        ])
        let stopped = termed.finish(timeout: 120)
        #expect(stopped.status == 128 + SIGTERM && !stopped.timedOut, "\(stopped.output)")
        #expect(stopped.output.contains("stopped after round 3"), "\(stopped.output)")
        let restarted = try ChildProcess([
            "serve", file, "--listen", "127.0.0.1:\(port3)", "--insecure", "--state-dir", dir.file("termed"),
        ])
        let finished = restarted.finish(timeout: 120)
        #expect(finished.status == 0 && finished.output.contains("resuming after round 3"), "\(finished.output)")
        #expect(waiting.finish(timeout: 60).status == 0)
        let sameTermed = try model(dir.file("termed")) == expected
        #expect(sameTermed, "the run stopped by SIGTERM and resumed differs from the simulator's")
        #expect(try evaluations(dir.file("termed")) == evaluated)
    }

    @Test func aClientProcessKilledMidRoundLeavesTheRoundToTheOthers() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("net.yaml")
        // Every client takes part in every round, and a round waits at most 5 s for a client.
        try (Self.experiment + "clients_per_round: 4\ndeadline_s: 5\n")
            .replacingOccurrences(of: "clients_per_round: 2\n", with: "")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let coordinator = try ChildProcess([
            "serve", file, "--listen", "127.0.0.1:0", "--insecure", "--state-dir", dir.file("net"),
        ])
        let port = try Self.port(of: coordinator)
        let three = try ChildProcess([
            "join", file, "--server", "127.0.0.1:\(port)", "--client", "0", "--virtual-clients", "3", "--insecure",
        ])
        let doomed = try ChildProcess(
            ["join", file, "--server", "127.0.0.1:\(port)", "--client", "3", "--insecure"],
            environment: ["FEDSWIFT_FAULT": "client-trained@2"])
        let gone = doomed.finish(timeout: 120)
        #expect(gone.signalled, "\(gone.output)")
        let served = coordinator.finish(timeout: 120)
        _ = three.finish(timeout: 60)
        #expect(served.status == 0, "\(served.output)")
        let rows = try String(contentsOfFile: dir.file("net") + "/metrics.jsonl", encoding: .utf8).split(
            separator: "\n")
        #expect(rows.count == 4)
        // Round 1 with all four; from round 2 on, client 3 is gone and the others complete the rounds.
        #expect(rows[0].contains("\"completed\": 4"))
        for row in rows.dropFirst() { #expect(row.contains("\"completed\": 3"), "\(row)") }
    }
}

/// TLS between `serve` and `join`, with certificates a test CA issues at test time.
@Suite(.serialized) struct NetworkTLSTests {
    /// Makes a CA and a certificate it signs for `name` (with 127.0.0.1 and localhost as names)
    /// in `dir`: `<name>.pem`, `<name>.key`, and the CA's `<ca>.pem`.
    static func issue(_ name: String, by ca: String, in dir: String) throws {
        func openssl(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = args
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw TestSupportError("openssl \(args) failed") }
        }
        if !FileManager.default.fileExists(atPath: dir + "/\(ca).pem") {
            try openssl([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", "/CN=\(ca)", "-keyout", "\(ca).key", "-out", "\(ca).pem",
            ])
        }
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(
            toFile: dir + "/\(name).ext", atomically: true, encoding: .utf8)
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=\(name)",
            "-keyout", "\(name).key", "-out", "\(name).csr",
        ])
        try openssl([
            "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-CAcreateserial",
            "-days", "2", "-extfile", "\(name).ext", "-out", "\(name).pem",
        ])
    }

    @Test func clientsTrustOnlyTheRightCAAndMutualTLSWantsAClientCertificate() throws {
        let dir = try TemporaryDirectory()
        try Self.issue("server", by: "ca", in: dir.path)
        try Self.issue("client", by: "ca", in: dir.path)
        try Self.issue("stranger", by: "other-ca", in: dir.path)
        let file = dir.file("net.yaml")
        try NetworkProcessTests.experiment.replacingOccurrences(of: "rounds: 4", with: "rounds: 1")
            .write(toFile: file, atomically: true, encoding: .utf8)
        func coordinator(_ extra: [String], state: String) throws -> (ChildProcess, Int) {
            let c = try ChildProcess(
                ["serve", file, "--listen", "127.0.0.1:0", "--state-dir", dir.file(state), "--join-timeout", "20"]
                    + ["--tls-cert", dir.file("server.pem"), "--tls-key", dir.file("server.key")] + extra)
            return (c, try NetworkProcessTests.port(of: c))
        }
        func join(
            _ port: Int, _ extra: [String]
        ) throws -> (status: Int32, signalled: Bool, output: String, timedOut: Bool) {
            try ChildProcess.fedswift(
                ["join", file, "--server", "127.0.0.1:\(port)", "--client", "0", "--virtual-clients", "4"]
                    + ["--patience", "2"] + extra, timeout: 60)
        }
        // Without --insecure a coordinator needs a certificate.
        let bare = try ChildProcess.fedswift(["serve", file, "--listen", "127.0.0.1:0"])
        #expect(bare.status != 0 && bare.output.contains("--tls-cert"), "\(bare.output)")

        // TLS: the right CA works; another CA, or no TLS at all, does not.
        let (tls, port) = try coordinator([], state: "tls")
        #expect(try join(port, ["--ca", dir.file("other-ca.pem")]).status != 0)
        #expect(try join(port, ["--insecure"]).status != 0)
        let good = try join(port, ["--ca", dir.file("ca.pem")])
        #expect(good.status == 0, "\(good.output)")
        #expect(tls.finish(timeout: 60).status == 0)

        // Mutual TLS: a client certificate from the CA is needed; one from another CA is refused.
        let (mutual, port2) = try coordinator(["--client-ca", dir.file("ca.pem")], state: "mtls")
        #expect(try join(port2, ["--ca", dir.file("ca.pem")]).status != 0)
        #expect(
            try join(
                port2,
                [
                    "--ca", dir.file("ca.pem"), "--tls-cert", dir.file("stranger.pem"), "--tls-key",
                    dir.file("stranger.key"),
                ]
            ).status != 0)
        let trusted = try join(
            port2,
            [
                "--ca", dir.file("ca.pem"), "--tls-cert", dir.file("client.pem"), "--tls-key", dir.file("client.key"),
            ])
        #expect(trusted.status == 0, "\(trusted.output)")
        #expect(mutual.finish(timeout: 60).status == 0)
    }
}
