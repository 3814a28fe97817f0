import ArgumentParser
import FedData
import FedEngine
import FedNet
import FedSim
import FedTensor
import Foundation
import Logging

extension FedSwiftCommand {
    /// The coordinator of a networked run.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Coordinate a federated experiment with clients that join over the network (gRPC).",
            discussion: """
                Listens for `fedswift join` clients, waits for --min-clients of them, and runs the experiment's \
                rounds with the connected clients. Writes config.yaml, metrics.jsonl, metrics.csv, \
                model.safetensors and a checkpoint after every round to --state-dir; started again with the \
                same --state-dir it resumes the run, and clients reconnect by themselves. SIGTERM or SIGINT \
                stops it after the round in progress (checkpointed; clients wait for it to come back). \
                Logs go to standard error; --metrics serves Prometheus metrics over HTTP.
                """)

        @Argument(help: "Experiment YAML file.") var experiment: String
        @Option(
            name: .customLong("set"), help: "Override a key, e.g. --set rounds=20 (repeatable).")
        var overrides: [String] = []
        @Option(help: "Address to listen on, HOST:PORT (port 0: any free port, printed).") var listen = "127.0.0.1:7070"
        @Option(help: "Run directory: metrics, model and checkpoint (default: runs/<name>).") var stateDir: String?
        @Option(help: "Clients to wait for before the first round (default: the experiment's clients).")
        var minClients: Int?
        @Option(help: "Seconds to wait for them.") var joinTimeout = 600.0
        @Flag(help: "Plain HTTP/2 without TLS, for loopback experiments.") var insecure = false
        @Option(help: "PEM certificate chain of the coordinator (TLS).") var tlsCert: String?
        @Option(help: "PEM private key of the coordinator (TLS).") var tlsKey: String?
        @Option(help: "PEM CA that client certificates must be signed by (mutual TLS).") var clientCa: String?
        @Option(
            help:
                "File of accepted clients, one 'CLIENT_INDEX SHA256' per line: the SHA-256 (hex) of the client's token, e.g. from `printf %s TOKEN | sha256sum`."
        )
        var tokens: String?
        @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free port, printed).")
        var metrics: String?
        @Option(help: "Seconds between a client's heartbeats; a client silent for twice as long is dropped.")
        var heartbeat = 30.0
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
        @OptionGroup var compute: BackendOptions

        func run() async throws {
            try compute.apply()
            let logger = try makeLogger(label: "fedswift.coordinator", level: logLevel)
            guard heartbeat > 0 else { throw ValidationError("--heartbeat must be positive") }
            let config = try loadExperiment(experiment, overrides: overrides)
            let (host, port) = try Self.address(listen)
            let security: ServerSecurity
            if insecure {
                security = .insecure
            } else {
                guard let tlsCert, let tlsKey else {
                    throw ValidationError("TLS needs --tls-cert and --tls-key (or --insecure for loopback experiments)")
                }
                security = .tls(certificateChain: tlsCert, privateKey: tlsKey, clientCA: clientCa)
            }
            let accepted = try tokens.map(Self.readTokens)
            let path = stateDir ?? "runs/\(config.name)"
            let coordinator = try Coordinator(
                config: config, test: try FashionMNIST.loadTest(directory: config.dataDirectory), tokens: accepted,
                heartbeatSeconds: heartbeat, logger: logger)
            let stop = StopSignals()
            coordinator.shouldStop = { stop.received != 0 }
            var endpoint: MetricsServer?
            if let metrics {
                let (metricsHost, metricsPort) = try Self.address(metrics)
                endpoint = try await MetricsServer.start(
                    host: metricsHost, port: metricsPort, metrics: coordinator.clients.metrics)
                say("metrics at http://\(metricsHost):\(endpoint!.port)/metrics")
            }
            let checkpointPath = path + "/" + Checkpoint.fileName
            var resumed = false
            if FileManager.default.fileExists(atPath: checkpointPath) {
                do {
                    try coordinator.restore(from: try Checkpoint.read(path: checkpointPath))
                } catch {
                    throw ValidationError("cannot resume from \(checkpointPath): \(error)")
                }
                resumed = true
            }
            let dir = try RunDirectory(
                path: path, config: config,
                resuming: resumed ? (coordinator.jsonLines, coordinator.csvLines) : nil)
            coordinator.checkpointPath = checkpointPath
            let minimum = minClients ?? config.partition.clients
            let wasResumed = resumed
            nonisolated(unsafe) let output = dir
            let rounds = config.rounds
            let rows = try await coordinator.serve(
                host: host, port: port, security: security, minimumClients: minimum, timeout: joinTimeout,
                onListening: { port in
                    say(
                        "\(config.name): listening on \(host):\(port)\(insecure ? " (insecure)" : ""), waiting for "
                            + "\(minimum) clients"
                            + (wasResumed ? "; resuming after round \(coordinator.engine.round)" : ""))
                },
                onRound: { row in
                    output.append(row)
                    say(
                        "round \(row.round)/\(rounds)  accuracy \(row.testAccuracy.map { fmt($0, 4) } ?? "-")  "
                            + "clients \(row.completed)/\(row.selected)  wall \(fmt(row.wallTime, 1)) s")
                })
            await endpoint?.close()
            if coordinator.engine.round < config.rounds {
                say("stopped after round \(coordinator.engine.round); start again with the same --state-dir to resume")
                throw ExitCode(128 + stop.received)
            }
            try dir.saveModel(
                coordinator.engine.model,
                metadata: ["format": "pt", "fedswift.model": config.model, "fedswift.seed": "\(config.seed)"])
            let gaps = coordinator.clients.gaps.sorted()
            if !gaps.isEmpty {
                print(
                    "between rounds (last update in to next task out): median \(fmt(1000 * gaps[gaps.count / 2], 1)) ms, "
                        + "max \(fmt(1000 * gaps.last!, 1)) ms")
            }
            print(
                "final test accuracy \(rows.last?.testAccuracy.map { fmt($0, 4) } ?? "-"); metrics in \(path)/metrics.jsonl"
            )
        }

        static func address(_ text: String) throws -> (String, Int) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65_535).contains(port), colon != text.startIndex
            else { throw ValidationError("'\(text)' is not HOST:PORT") }
            return (String(text[..<colon]), port)
        }

        static func readTokens(_ path: String) throws -> [Int: String] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("cannot read the token file '\(path)'")
            }
            var out: [Int: String] = [:]
            for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() where !line.hasPrefix("#") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count == 2, let index = Int(fields[0]), index >= 0, fields[1].count == 64,
                    fields[1].allSatisfy({ $0.isHexDigit })
                else {
                    throw ValidationError("\(path) line \(n + 1): expected 'CLIENT_INDEX SHA256' (64 hex digits)")
                }
                out[index] = fields[1].lowercased()
            }
            return out
        }
    }

    /// Clients of a networked run.
    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take part in a networked federated experiment as one or more clients.",
            discussion: """
                Each client trains on its partition of Fashion-MNIST (the split the experiment's seed makes) \
                and keeps its own error-feedback memory and strategy state. Clients dial out, reconnect with \
                exponential backoff when the coordinator is away, and stop when it ends the run.
                """)

        @Argument(help: "Experiment YAML file (the coordinator's).") var experiment: String
        @Option(name: .customLong("set"), help: "Override a key, as the coordinator does (repeatable).")
        var overrides: [String] = []
        @Option(help: "Coordinator address, HOST:PORT.") var server: String
        @Option(help: "Index of the (first) client.") var client: Int
        @Option(help: "Clients hosted by this process: indices client ..< client + N, each its own session.")
        var virtualClients = 1
        @Option(help: "The client's token (the same for every virtual client).") var token = ""
        @Flag(help: "Plain HTTP/2 without TLS, for loopback experiments.") var insecure = false
        @Option(help: "PEM CA to trust for the coordinator's certificate (default: the system's).") var ca: String?
        @Option(help: "PEM certificate chain of the client (mutual TLS).") var tlsCert: String?
        @Option(help: "PEM private key of the client (mutual TLS).") var tlsKey: String?
        @Option(help: "Seconds to keep trying while the coordinator cannot be reached.") var patience = 120.0
        @Option(help: "Threads that train this process's clients (default: the experiment's workers).")
        var threads: Int?
        @Option(
            help:
                "The client's own training images, an IDX file [N, 28, 28] (gzipped or not), instead of its Fashion-MNIST partition; needs --labels."
        )
        var images: String?
        @Option(help: "The client's own training labels, an IDX file [N].") var labels: String?
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
        @OptionGroup var compute: BackendOptions

        func run() async throws {
            try compute.apply()
            let logger = try makeLogger(label: "fedswift.client", level: logLevel)
            let config = try loadExperiment(experiment, overrides: overrides)
            guard client >= 0, virtualClients >= 1, client + virtualClients <= config.partition.clients else {
                throw ValidationError(
                    "clients \(client) ..< \(client + virtualClients) are not all in 0 ..< \(config.partition.clients)")
            }
            let (host, port) = try Serve.address(server)
            let workers = threads ?? config.workers
            guard workers >= 1 else { throw ValidationError("--threads must be at least 1") }
            let clients: [FederatedClient]
            switch (images, labels) {
            case (let images?, let labels?):
                guard virtualClients == 1 else {
                    throw ValidationError("a data file of its own is one client's: leave out --virtual-clients")
                }
                let own = try FashionMNIST.loadSplit(imagesPath: images, labelsPath: labels)
                clients = [
                    try FederatedClient(
                        config: config, index: client, data: own, indices: Array(0..<own.count),
                        workers: try TrainingWorkers(config: config, threads: workers), token: token)
                ]
            case (nil, nil):
                let train = try FashionMNIST.load(directory: config.dataDirectory).train
                clients = try FederatedClient.clients(
                    client..<(client + virtualClients), config: config, train: train, threads: workers, token: token)
            default:
                throw ValidationError("--images and --labels go together")
            }
            let security: ClientSecurity =
                insecure ? .insecure : .tls(trustRoots: ca, certificateChain: tlsCert, privateKey: tlsKey)
            try await FederatedClient.join(
                clients, host: host, port: port, security: security, patience: patience, logger: logger)
            print("clients \(client) ..< \(client + virtualClients): the run is over")
        }
    }
}

/// A line on standard output, unbuffered (scripts and tests read it as it comes).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The experiment file with its overrides; a bad key or value is a usage error naming the file.
func loadExperiment(_ path: String, overrides: [String]) throws -> ExperimentConfig {
    do {
        return try ExperimentConfig.load(path: path, overrides: overrides)
    } catch let error as ConfigError {
        throw ValidationError("\(path): \(error)")
    }
}

/// A logger writing to standard error at `level` (swift-log's stream handler).
func makeLogger(label: String, level: String) throws -> Logger {
    guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
        throw ValidationError(
            "--log-level '\(level)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = parsed
    return logger
}
