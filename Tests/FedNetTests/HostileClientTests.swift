import FedCompress
import FedData
import FedEngine
import FedNN
import Foundation
import GRPCCore
import GRPCInProcessTransport
import Logging
import Testing

@testable import FedNet

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Log entries kept in memory, for tests that read what the coordinator logged.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    var entries: [String] { lock.withLock { lines } }

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            capture.lock.withLock {
                capture.lines.append("\(event.level) \(event.message) \(fields.joined(separator: " "))")
            }
        }
    }
}

/// A hand-driven client that speaks the wire protocol directly, to send what FedSwift's own client
/// never would.
enum RawClient {
    struct Outcome {
        var results: [Fedswift_V1_RoundResult] = []
        var code: RPCError.Code?
    }

    /// Joins as `index` and answers each task with `upload(task, payload)`; `silent` sends nothing
    /// after the Join, not even heartbeats.
    static func run(
        _ connection: GRPCClient<some ClientTransport>, config: ExperimentConfig, parameterCount: Int, index: Int,
        upload: @escaping @Sendable (Fedswift_V1_RoundTask, [UInt8]) -> [Fedswift_V1_ClientMessage] = { _, _ in [] }
    ) async -> Outcome {
        let stub = Fedswift_V1_Coordinator.Client(wrapping: connection)
        let (outbound, continuation) = AsyncStream.makeStream(of: Fedswift_V1_ClientMessage.self)
        var join = Fedswift_V1_Join()
        join.protocolVersion = Wire.protocolVersion
        join.clientIndex = UInt32(index)
        join.token = "raw-secret-\(index)"
        join.capabilities.parameterCount = UInt64(parameterCount)
        join.capabilities.experimentFingerprint = config.fingerprint
        var first = Fedswift_V1_ClientMessage()
        first.join = join
        continuation.yield(first)
        var outcome = Outcome()
        do {
            outcome.results = try await stub.session(
                requestProducer: { writer in
                    for await message in outbound { try await writer.write(message) }
                },
                onResponse: { response in
                    defer { continuation.finish() }
                    var results: [Fedswift_V1_RoundResult] = []
                    var task: Fedswift_V1_RoundTask?
                    var payload: ChunkAssembler?
                    for try await message in response.messages {
                        switch message.kind {
                        case .task(let t):
                            task = t
                            payload = try ChunkAssembler(total: Int(t.modelBytes), maximum: 1 << 30)
                        case .model(let chunk):
                            try payload!.add(offset: Int(chunk.offset), data: chunk.data, last: chunk.last)
                            if payload!.complete { for m in upload(task!, payload!.bytes) { continuation.yield(m) } }
                        case .result(let r): results.append(r)
                        default: break
                        }
                    }
                    return results
                })
        } catch let error as RPCError {
            outcome.code = error.code
        } catch {
            Issue.record("unexpected error \(error)")
        }
        return outcome
    }

    /// The chunks of `payload` as an upload of `task`, with a plausible summary.
    static func chunks(
        _ payload: [UInt8], task: Fedswift_V1_RoundTask, size: Int = 1 << 20, total: Int? = nil
    ) -> [Fedswift_V1_ClientMessage] {
        Wire.chunks(payload, size: size).map { piece in
            var c = Fedswift_V1_UpdateChunk()
            c.round = task.round
            c.attempt = task.attempt
            c.offset = UInt64(piece.offset)
            c.data = piece.data
            c.totalBytes = UInt64(total ?? payload.count)
            c.last = piece.last
            if piece.last {
                c.summary.sampleCount = 50
                c.summary.steps = 1
            }
            var m = Fedswift_V1_ClientMessage()
            m.update = c
            return m
        }
    }

    /// A dense update of `count` values (the identity codec's format), all `value`.
    static func dense(_ count: Int, _ value: Float) -> [UInt8] {
        var bytes: [UInt8] = []
        [Float](repeating: value, count: count).withUnsafeBufferPointer { IdentityCodec.encode($0, into: &bytes) }
        return bytes
    }
}

/// Hostile clients over the in-process transport: each round still completes with the honest
/// clients, the bad update or session is refused with its reason logged and counted.
@Suite(.serialized) struct HostileClientTests {
    static func config() throws -> ExperimentConfig {
        var config = try NetworkRoundTests.config()
        config.rounds = 1
        return config
    }

    struct Run {
        var row: RoundMetrics
        var raw: RawClient.Outcome
        var metrics: String
        var logs: [String]
    }

    /// One round of all six clients: client 0 is a raw client answering with `upload`, the others
    /// are FedSwift's own.
    static func round(
        heartbeat: Double = 30,
        _ upload: @escaping @Sendable (Fedswift_V1_RoundTask, [UInt8], Int) -> [Fedswift_V1_ClientMessage]
    ) async throws -> Run {
        var settings = try config()
        settings.clientsPerRound = settings.partition.clients
        let config = settings
        let capture = LogCapture()
        let coordinator = try Coordinator(
            config: config, heartbeatSeconds: heartbeat, logger: capture.logger)
        let n = coordinator.engine.model.parameterCount
        let transport = InProcessTransport()
        let server = GRPCServer(transport: transport.server, services: [coordinator.service])
        let honest = try FederatedClient.clients(
            1..<config.partition.clients, config: config, train: NetworkRoundTests.data.train, threads: 1)
        var rows: [RoundMetrics] = []
        var raw = RawClient.Outcome()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            // One connection: the honest sessions and the raw one on it.
            try await withGRPCClient(transport: transport.client) { connection in
                try await withThrowingTaskGroup(of: RawClient.Outcome?.self) { sessions in
                    for client in honest {
                        sessions.addTask {
                            try await client.run(connection)
                            return nil
                        }
                    }
                    sessions.addTask {
                        await RawClient.run(
                            connection, config: config, parameterCount: n, index: 0, upload: { upload($0, $1, n) })
                    }
                    rows = try await coordinator.run(minimumClients: config.partition.clients, timeout: 600)
                    coordinator.clients.closeAll()
                    for try await outcome in sessions { if let outcome { raw = outcome } }
                }
            }
            server.beginGracefulShutdown()
        }
        return Run(
            row: try #require(rows.first), raw: raw, metrics: coordinator.clients.metrics.text(), logs: capture.entries)
    }

    @Test func aNonFiniteUpdateIsRejectedWithItsReason() async throws {
        let run = try await Self.round { task, _, n in RawClient.chunks(RawClient.dense(n, .nan), task: task) }
        #expect(run.row.completed == 5 && run.row.selected == 6)
        #expect(run.raw.code == nil)
        let result = try #require(run.raw.results.first)
        #expect(!result.accepted && result.reason.contains("NaN"), "\(result.reason)")
        #expect(run.metrics.contains(#"fedswift_updates_rejected_total{reason="invalid"} 1"#), "\(run.metrics)")
        #expect(run.metrics.contains("fedswift_updates_accepted_total 5\n"), "\(run.metrics)")
        #expect(run.metrics.contains("fedswift_round 1.0\n"), "\(run.metrics)")
        #expect(run.metrics.contains("fedswift_connected_clients 0.0\n"), "every session ended: \(run.metrics)")
        #expect(run.logs.contains { $0.contains("update rejected") && $0.contains("client=0") && $0.contains("NaN") })
    }

    @Test func anUpdateOfTheWrongSizeIsRejected() async throws {
        let run = try await Self.round { task, _, n in RawClient.chunks(RawClient.dense(n - 1, 0.01), task: task) }
        #expect(run.row.completed == 5)
        let result = try #require(run.raw.results.first)
        #expect(!result.accepted && !result.reason.isEmpty)
        #expect(run.logs.contains { $0.contains("update rejected") && $0.contains("client=0") })
    }

    @Test func contractBreakingChunksEndTheSession() async throws {
        // A chunk above the limit, chunks out of order, an announced size above any codec's, and
        // bytes past the announced size.
        let cases: [(String, @Sendable (Fedswift_V1_RoundTask, [UInt8], Int) -> [Fedswift_V1_ClientMessage])] = [
            (
                "oversized chunk",
                { task, _, n in
                    RawClient.chunks(
                        RawClient.dense(n, 0) + [UInt8](repeating: 0, count: 300_000), task: task, size: (1 << 20) + 1)
                }
            ),
            (
                "out of order",
                { task, _, n in Array(RawClient.chunks(RawClient.dense(n, 0), task: task, size: 1000).reversed()) }
            ),
            (
                "announced size",
                { task, _, n in
                    RawClient.chunks(
                        RawClient.dense(n, 0), task: task,
                        total: Wire.maximumUpload(parameterCount: n, tensors: 9, vectorValues: 0) + 1)
                }
            ),
            ("past the end", { task, _, n in RawClient.chunks(RawClient.dense(n, 0), task: task, total: 100) }),
        ]
        for (name, upload) in cases {
            let run = try await Self.round(upload)
            #expect(run.raw.code == .invalidArgument, "\(name)")
            #expect(run.raw.results.isEmpty, "\(name)")
            #expect(run.row.completed == 5, "\(name): the round goes on with the honest clients")
            #expect(run.metrics.contains(#"fedswift_sessions_ended_total{cause="protocol"} 1"#), "\(name)")
            #expect(run.logs.contains { $0.contains("wire contract") && $0.contains("client=0") }, "\(name)")
        }
    }

    @Test func aSilentClientIsDroppedAndTheRoundGoesOn() async throws {
        // Client 0 never answers and sends no heartbeat: with a heartbeat of 2 s it is dropped
        // after about 4 s, and the round (which has no deadline) completes with the others, whose
        // sessions heartbeat every second (four chances, so a busy test machine does not drop them).
        let start = ContinuousClock.now
        let run = try await Self.round(heartbeat: 2) { _, _, _ in [] }
        #expect(run.raw.code == .unavailable)
        #expect(run.row.completed == 5)
        #expect(ContinuousClock.now - start < .seconds(60))
        #expect(run.metrics.contains(#"fedswift_sessions_ended_total{cause="silent"} 1"#), "\(run.metrics)")
        #expect(!run.metrics.contains(#"cause="silent"} 2"#))
    }

    @Test func refusedJoinsAreLoggedWithoutTheirToken() async throws {
        let capture = LogCapture()
        let config = try NetworkRoundTests.config()
        let coordinator = try Coordinator(
            config: config, tokens: [0: CoordinatorService.digest("right")], logger: capture.logger)
        let transport = InProcessTransport()
        let server = GRPCServer(transport: transport.server, services: [coordinator.service])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            try await withGRPCClient(transport: transport.client) { connection in
                let outcome = await RawClient.run(
                    connection, config: config, parameterCount: coordinator.engine.model.parameterCount, index: 0)
                #expect(outcome.code == .unauthenticated)
            }
            server.beginGracefulShutdown()
        }
        let logs = capture.entries
        #expect(
            logs.contains { $0.contains("join refused") && $0.contains("client=0") && $0.contains("unauthenticated") })
        #expect(!logs.contains { $0.contains("raw-secret") }, "a token was logged: \(logs)")
        #expect(coordinator.clients.metrics.text().contains(#"fedswift_joins_refused_total{code="unauthenticated"} 1"#))
    }

    @Test func metricsAreServedInPrometheusTextFormat() async throws {
        let metrics = CoordinatorMetrics()
        metrics.connected(7)
        metrics.started(round: 3)
        metrics.received(bytes: 1234)
        metrics.rejected(reason: "invalid")
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0, metrics: metrics)
        let url = try #require(URL(string: "http://127.0.0.1:\(server.port)/metrics"))
        let (data, response) = try await URLSession.shared.data(from: url)
        let text = String(decoding: data, as: UTF8.self)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(text.contains("fedswift_connected_clients 7.0\n"), "\(text)")
        #expect(text.contains("fedswift_round 3.0\n"), "\(text)")
        #expect(text.contains("fedswift_bytes_received_total 1234"), "\(text)")
        #expect(text.contains(#"fedswift_updates_rejected_total{reason="invalid"} 1"#), "\(text)")
        #expect(text.contains("# TYPE fedswift_round_duration_seconds histogram"), "\(text)")
        let missing = try #require(URL(string: "http://127.0.0.1:\(server.port)/other"))
        let (_, other) = try await URLSession.shared.data(from: missing)
        #expect((other as? HTTPURLResponse)?.statusCode == 404)
        await server.close()
    }
}
