import FedEngine
import FedTestSupport
import Foundation
import Testing

/// `fedswift simulate` killed (SIGKILL, at chosen crash points) or stopped (SIGTERM) and resumed
/// with `--resume` ends exactly where an uninterrupted run ends: the same metrics (wall-clock fields
/// aside) and the same model file, byte for byte. The runs are child processes on real Fashion-MNIST.
@Suite(.serialized) struct ResumeTests {
    /// The `fedswift` built beside the test bundle.
    static let binary: String? = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            Bundle.main.bundlePath,
        ].map { $0 + "/fedswift" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    struct Outcome {
        var status: Int32
        var signalled: Bool
        var output: String
    }

    /// Runs `fedswift arguments` with `environment` added, for at most `timeout` seconds; `whileRunning`
    /// is called every 20 ms with the process until it returns false.
    @discardableResult
    static func fedswift(
        _ arguments: [String], environment: [String: String] = [:], timeout: Double = 300,
        whileRunning: ((Process) -> Bool)? = nil
    ) throws -> Outcome {
        let binary = try #require(binary, "the fedswift executable is not beside the test bundle")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = try TemporaryDirectory(prefix: "fedswift-child")
        FileManager.default.createFile(atPath: out.file("log"), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: out.file("log")))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        var watching = whileRunning != nil
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                process.waitUntilExit()
                Issue.record("fedswift \(arguments) did not finish in \(timeout) s")
                break
            }
            if watching { watching = whileRunning!(process) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        process.waitUntilExit()
        try log.close()
        let text = (try? String(contentsOfFile: out.file("log"), encoding: .utf8)) ?? ""
        return Outcome(
            status: process.terminationStatus, signalled: process.terminationReason == .uncaughtSignal, output: text)
    }

    /// The metrics rows without their wall-clock fields, and the model file's bytes.
    static func results(_ dir: String) throws -> (rows: [String], model: Data) {
        let wall: Set<String> = ["wall_time_s", "train_wall_s", "client_compute_s", "eval_wall_s"]
        let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        let rows = try text.split(separator: "\n").map { line -> String in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return object.filter { !wall.contains($0.key) }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                .joined(separator: " ")
        }
        return (rows, try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors")))
    }

    static let algorithms: [(String, String)] = [
        ("fedavg", "strategy: {name: fedavg}\nover_selection: 0.5"),
        ("scaffold", "strategy: {name: scaffold}"),
        ("feddyn", "strategy: {name: feddyn, alpha: 0.1}"),
        ("fedimpro", "strategy: {name: fedimpro, cut: net.2, momentum: 0.5, privacy_noise: 0.01}"),
        ("fedadam", "strategy: {name: fedadam, server_learning_rate: 0.01}"),
        (
            "compressed",
            """
            dropout: 0.1
            compression:
              uplink: {codec: topk, ratio: 0.05, error_feedback: residual, min_tensor_elements: 100}
              downlink: {codec: fp16, error_feedback: residual}
            """
        ),
    ]

    /// Crash points: between rounds (round 3's metrics written, its checkpoint not due), mid-round
    /// (round 5's clients trained, nothing aggregated), and while writing round 4's checkpoint.
    static let crashes = ["round-end@3", "round-trained@5", "before-rename checkpoint.safetensors@2"]

    @Test(arguments: algorithms)
    func killedRunsResumeToTheUninterruptedResult(_ name: String, _ settings: String) throws {
        let dir = try TemporaryDirectory()
        let experiment = dir.file("\(name).yaml")
        try TestExperiments.fmnist(name, settings).write(toFile: experiment, atomically: true, encoding: .utf8)
        let straight = try Self.fedswift(["simulate", experiment, "--out", dir.file("straight")])
        #expect(straight.status == 0, "\(straight.output)")
        let expected = try Self.results(dir.file("straight"))
        #expect(expected.rows.count == 5)
        for crash in Self.crashes {
            let out = dir.file("crash-\(crash.prefix(12))")
            let killed = try Self.fedswift(
                ["simulate", experiment, "--out", out], environment: ["FEDSWIFT_FAULT": crash])
            #expect(killed.signalled && killed.status == 9, "\(name) \(crash): \(killed.output)")
            #expect(!FileManager.default.fileExists(atPath: out + "/model.safetensors"))
            let resumed = try Self.fedswift(["simulate", "--resume", out])
            #expect(resumed.status == 0, "\(name) \(crash): \(resumed.output)")
            #expect(resumed.output.contains("resuming after round"), "\(resumed.output)")
            let got = try Self.results(out)
            #expect(got.rows == expected.rows, "\(name) \(crash)")
            // (Compared outside #expect, which would diff the bytes on failure.)
            let sameModel = got.model == expected.model
            #expect(sameModel, "\(name) \(crash): final model differs")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.contains(".tmp-") }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
    }

    @Test func sigtermStopsAtACheckpointAndTheRunResumes() throws {
        let dir = try TemporaryDirectory()
        let experiment = dir.file("term.yaml")
        try TestExperiments.fmnist("term", rounds: 1000, checkpointEvery: 50, "strategy: {name: scaffold}")
            .write(toFile: experiment, atomically: true, encoding: .utf8)
        let out = dir.file("run")
        var signalled = false
        let stopped = try Self.fedswift(["simulate", experiment, "--out", out]) { process in
            let rows = (try? String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n")
            guard (rows?.count ?? 0) >= 2 else { return true }
            kill(process.processIdentifier, SIGTERM)
            signalled = true
            return false
        }
        #expect(signalled)
        #expect(!stopped.signalled && stopped.status == 128 + SIGTERM, "\(stopped.output)")
        #expect(stopped.output.contains("--resume"))
        let checkpoint = try Checkpoint.read(path: out + "/" + Checkpoint.fileName)
        let round = try #require(Int(try checkpoint.value("engine/round")))
        let rows = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(round >= 2 && round == rows.count)
        // Resumed to two rounds past the stop, against a run of that many rounds.
        let resumed = try Self.fedswift(["simulate", "--resume", out, "--set", "rounds=\(round + 2)"])
        #expect(resumed.status == 0, "\(resumed.output)")
        let straight = try Self.fedswift([
            "simulate", experiment, "--set", "rounds=\(round + 2)", "--out", dir.file("straight"),
        ])
        #expect(straight.status == 0)
        let a = try Self.results(out)
        let b = try Self.results(dir.file("straight"))
        #expect(a.rows == b.rows)
        let sameModel = a.model == b.model
        #expect(sameModel)
    }

    @Test func foreignCorruptAndMissingCheckpointsAreRefusedAndNothingIsOverwritten() throws {
        let dir = try TemporaryDirectory()
        let experiment = dir.file("a.yaml")
        try TestExperiments.fmnist("a").write(toFile: experiment, atomically: true, encoding: .utf8)
        let out = dir.file("run")
        let killed = try Self.fedswift(
            ["simulate", experiment, "--out", out], environment: ["FEDSWIFT_FAULT": "round-end@3"])
        #expect(killed.signalled)
        func snapshot() throws -> [String: Data] {
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: out) {
                files[name] = try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))
            }
            return files
        }
        let before = try snapshot()
        // A fresh run into the folder of an unfinished one.
        let fresh = try Self.fedswift(["simulate", experiment, "--out", out])
        #expect(fresh.status != 0 && fresh.output.contains("unfinished run"), "\(fresh.output)")
        // Another experiment's settings.
        let other = try Self.fedswift(["simulate", "--resume", out, "--set", "local.lr=0.1"])
        #expect(other.status != 0 && other.output.contains("another experiment"), "\(other.output)")
        let otherFile = dir.file("b.yaml")
        try TestExperiments.fmnist("b").write(toFile: otherFile, atomically: true, encoding: .utf8)
        let named = try Self.fedswift(["simulate", otherFile, "--resume", out])
        #expect(named.status != 0 && named.output.contains("is not the experiment"), "\(named.output)")
        let unchanged = try snapshot() == before
        #expect(unchanged)
        // A flipped bit, then a truncated file.
        var bytes = try #require(before[Checkpoint.fileName])
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: out + "/" + Checkpoint.fileName))
        let flipped = try Self.fedswift(["simulate", "--resume", out])
        #expect(flipped.status != 0 && flipped.output.contains("corrupt"), "\(flipped.output)")
        try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: out + "/" + Checkpoint.fileName))
        let truncated = try Self.fedswift(["simulate", "--resume", out])
        #expect(truncated.status != 0 && truncated.output.contains("cannot be read"), "\(truncated.output)")
        let metricsKept = try snapshot()["metrics.jsonl"] == before["metrics.jsonl"]
        #expect(metricsKept)
        // No checkpoint at all.
        let empty = dir.file("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let none = try Self.fedswift(["simulate", "--resume", empty])
        #expect(none.status != 0 && none.output.contains("no checkpoint"), "\(none.output)")
    }
}

/// The command line spells choices as the experiment files do, and lists them when one is wrong.
@Suite struct CommandLineSpellingTests {
    @Test func partitionSchemesAreSpelledAsInExperimentFiles() throws {
        let ok = try ResumeTests.fedswift(["partition", "--scheme", "quantity", "--clients", "5", "--json"])
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains("\"scheme\": \"quantity\""))
        let wrong = try ResumeTests.fedswift(["partition", "--scheme", "quantity-skew", "--clients", "5"])
        #expect(wrong.status != 0)
        #expect(wrong.output.contains("iid") && wrong.output.contains("quantity"), "\(wrong.output)")
        let optimizer = try ResumeTests.fedswift(["train", "--optimizer", "rmsprop", "--epochs", "1"])
        #expect(optimizer.status != 0 && optimizer.output.contains("adamw"), "\(optimizer.output)")
    }
}
