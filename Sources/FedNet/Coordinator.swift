import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation
import Logging

/// A federated run over the network: the round engine with the connected clients as its pool.
/// ``service`` is what a gRPC server serves; ``run(minimumClients:timeout:onRound:)`` waits for
/// clients and runs the experiment's rounds (on a thread of its own, since the engine blocks while
/// a round's clients train).
public final class Coordinator: @unchecked Sendable {
    public let config: ExperimentConfig
    public let engine: RoundEngine
    public let clients: NetworkClients
    public let service: CoordinatorService
    let test: LabeledDataset?
    let evaluator: ParallelEvaluator
    /// Rows of the rounds run so far (restored ones included), and their metrics lines.
    public private(set) var rows: [RoundMetrics] = []
    public private(set) var jsonLines: [String] = []
    public private(set) var csvLines: [String] = []
    /// Where a checkpoint is written after every round (nil: none).
    public var checkpointPath: String?
    private var elapsed = 0.0
    /// The round whose evaluation is still running (its metrics row has none yet).
    private var unevaluated: Int?
    /// The checkpoint being written while the next round trains (used on the engine's thread).
    private var checkpointWrite: BackgroundWork<Void>?

    /// Stops the run after the round in progress (checked after every round): the coordinator
    /// checkpoints, ends the sessions with UNAVAILABLE (clients keep reconnecting) and returns.
    public var shouldStop: @Sendable () -> Bool = { false }

    public init(
        config: ExperimentConfig, test: LabeledDataset? = nil, tokens: [Int: String]? = nil,
        heartbeatSeconds: Double = 30, logger: Logger = Logger(label: "fedswift.coordinator")
    ) throws {
        self.config = config
        self.test = test.map { t in
            config.evaluation.samples.map { t.subset(indices: Array(0..<min($0, t.count))) } ?? t
        }
        engine = try RoundEngine(config: config, model: try ModelZoo.make(config.model, seed: config.seed))
        let count = engine.model.parameterCount
        clients = NetworkClients(
            config: config, parameterCount: count, tensors: engine.model.parameters.entries.count,
            uploadVectorValues: engine.strategy.uploads(parameterCount: count).values.reduce(0, +),
            heartbeatSeconds: heartbeatSeconds, logger: logger)
        evaluator = try ParallelEvaluator(model: config.model, seed: config.seed, threads: config.workers)
        service = CoordinatorService(
            clients: clients, tokens: tokens,
            runID: "\(config.name)-\(String(UInt64.random(in: .min ... .max), radix: 16))")
        // A round's checkpoint is written while the next round's clients train, and is on disk
        // before that round goes on (so a restart goes back at most two rounds; clients keep
        // their memory from before each of their last two rounds).
        clients.whileTraining = { [unowned self] in try self.finishCheckpoint() }
    }

    /// Waits for the checkpoint being written, if any.
    private func finishCheckpoint() throws {
        defer { checkpointWrite = nil }
        try checkpointWrite?.wait()
    }

    /// Writes the run's checkpoint in the background, after the one before it.
    private func writeCheckpoint() throws {
        guard let checkpointPath else { return }
        try finishCheckpoint()
        let checkpoint = saveCheckpoint()
        checkpointWrite = BackgroundWork { try checkpoint.write(to: checkpointPath) }
    }

    /// Waits up to `timeout` seconds for `minimumClients` to connect, then runs every round (or
    /// until ``shouldStop``); the test set (if any) is evaluated as in the simulator, and the
    /// checkpoint written before the round is reported. Row times are real seconds.
    public func run(
        minimumClients: Int, timeout: Double = 60, onRound: @escaping @Sendable (RoundMetrics) -> Void = { _ in }
    ) async throws -> [RoundMetrics] {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try self.runRounds(minimumClients, timeout, onRound) })
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func runRounds(
        _ minimumClients: Int, _ timeout: Double, _ onRound: (RoundMetrics) -> Void
    ) throws -> [RoundMetrics] {
        guard engine.round < config.rounds else { return rows }  // a finished run, restored
        let waited = ContinuousClock.now
        let connected = clients.waitForClients(minimumClients, timeout: timeout, stop: shouldStop)
        if shouldStop() { return rows }
        guard connected >= minimumClients else {
            throw WireError("only \(connected) of the \(minimumClients) clients needed connected within \(timeout) s")
        }
        clients.logger.info(
            "clients connected",
            metadata: ["clients": "\(connected)", "seconds": "\((ContinuousClock.now - waited).seconds)"])
        let clock = ContinuousClock()
        let start = clock.now
        let before = rows.last?.wallTime ?? 0
        // A round's evaluation runs beside the next round's training (it changes nothing the
        // next round uses), so the next tasks go out as soon as the round is aggregated and
        // checkpointed; the round's row is reported once its evaluation is in.
        var pending: (row: Int, line: Int, evaluation: BackgroundWork<PassStatistics>)?
        func settle() throws {
            guard let p = pending else { return }
            pending = nil
            unevaluated = nil
            rows[p.row].record(evaluation: try p.evaluation.wait())
            jsonLines[p.line] = rows[p.row].jsonLine
            csvLines[p.line] = rows[p.row].csvLine
            onRound(rows[p.row])
        }
        while engine.round < config.rounds && !shouldStop() {
            let round = engine.round + 1
            let roundStart = clock.now
            var row = try engine.runRound(round, pool: clients)
            let aggregated = clock.now
            try settle()
            let settled = clock.now
            let elapsed = self.elapsed + row.virtualTime
            self.elapsed = elapsed
            row.virtualTime = elapsed
            let isLast = round == config.rounds
            let due = test != nil && row.skipped == nil && (round % config.evaluation.every == 0 || isLast)
            // The last round, and one after which the run stops, are evaluated before their
            // checkpoint: nothing runs beside them.
            let overlapped = due && !isLast && !shouldStop()
            if let test, due && !overlapped { try evaluate(into: &row, on: test) }
            row.wallTime = before + (clock.now - start).seconds
            rows.append(row)
            jsonLines.append(row.jsonLine)
            csvLines.append(row.csvLine)
            if let test, overlapped {
                evaluator.load(UnsafeBufferPointer(engine.model.parameters.values))
                let (evaluator, batchSize) = (self.evaluator, config.evaluation.batchSize)
                pending = (
                    rows.count - 1, jsonLines.count - 1,
                    BackgroundWork { try evaluator.evaluateLoaded(on: test, batchSize: batchSize) }
                )
                unevaluated = round
            }
            FaultInjection.point("round-end")
            let saving = clock.now
            try finishCheckpoint()  // the previous round's, normally done while this one trained
            let snapshotting = clock.now
            try writeCheckpoint()
            clients.metrics.finishedRound(after: clock.now - roundStart)
            clients.logger.info(
                "round finished",
                metadata: [
                    "round": "\(round)", "completed": "\(row.completed)", "selected": "\(row.selected)",
                    "seconds": "\(row.trainWallTime)", "evaluation_wait_s": "\((settled - aggregated).seconds)",
                    "engine_s": "\((aggregated - roundStart).seconds - row.trainWallTime)",
                    "checkpoint_wait_s": "\((snapshotting - saving).seconds)",
                    "checkpoint_s": "\((clock.now - snapshotting).seconds)",
                ])
            if pending == nil { onRound(row) }
        }
        if pending != nil {  // stopped after an overlapped round: its evaluation goes in the checkpoint
            try settle()
            try writeCheckpoint()
        }
        try finishCheckpoint()
        return rows
    }

    /// Evaluates the global model on `test` into `row`.
    private func evaluate(into row: inout RoundMetrics, on test: LabeledDataset) throws {
        row.record(
            evaluation: try evaluator.evaluate(
                UnsafeBufferPointer(engine.model.parameters.values), on: test, batchSize: config.evaluation.batchSize))
    }

    /// The coordinator's side of the run (the clients keep their own memory): the engine, the
    /// clock and the metrics so far, and the experiment's fingerprint.
    public func saveCheckpoint() -> Checkpoint {
        var checkpoint = Checkpoint()
        checkpoint.values["experiment"] = service.fingerprint
        checkpoint.values["coordinator/elapsed"] = "\(elapsed)"
        checkpoint.values["simulation/rounds_planned"] = "\(config.rounds)"
        checkpoint.values["metrics.jsonl"] = jsonLines.joined(separator: "\n")
        checkpoint.values["metrics.csv"] = csvLines.joined(separator: "\n")
        if let unevaluated { checkpoint.values["coordinator/unevaluated"] = "\(unevaluated)" }
        engine.save(into: &checkpoint)
        return checkpoint
    }

    /// Continues the run `checkpoint` was saved from (a new coordinator of the same experiment).
    public func restore(from checkpoint: Checkpoint) throws {
        guard try checkpoint.value("experiment") == service.fingerprint else {
            throw CheckpointError("the checkpoint is from another experiment or other settings")
        }
        guard let elapsed = Double(try checkpoint.value("coordinator/elapsed")) else {
            throw CheckpointError("the checkpoint's clock is not a number")
        }
        let json = try checkpoint.value("metrics.jsonl").split(separator: "\n").map(String.init)
        let csv = try checkpoint.value("metrics.csv").split(separator: "\n").map(String.init)
        try engine.restore(from: checkpoint)
        guard json.count == engine.round, csv.count == engine.round else {
            throw CheckpointError("the checkpoint holds \(json.count) metrics rows for \(engine.round) rounds")
        }
        self.elapsed = elapsed
        jsonLines = json
        csvLines = csv
        // Saved while its evaluation ran: the restored model is that round's, evaluated now.
        if let pending = checkpoint.values["coordinator/unevaluated"] {
            guard Int(pending) == engine.round, var row = json.last.flatMap({ RoundMetrics(jsonLine: $0) }) else {
                throw CheckpointError("the checkpoint's unevaluated round \(pending) is not its last")
            }
            if let test { try evaluate(into: &row, on: test) }
            jsonLines[jsonLines.count - 1] = row.jsonLine
            csvLines[csvLines.count - 1] = row.csvLine
        }
    }
}

/// Work on a thread of its own (outside the cooperative pool), waited for once.
final class BackgroundWork<Result: Sendable>: @unchecked Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private var result: Swift.Result<Result, any Error>?

    init(_ body: @escaping @Sendable () throws -> Result) {
        let thread = Thread { [self] in
            result = Swift.Result { try body() }
            finished.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// The result, once the work is done.
    func wait() throws -> Result {
        finished.wait()
        return try result!.get()
    }
}

extension RoundMetrics {
    /// Sets the row's evaluation fields.
    fileprivate mutating func record(evaluation stats: PassStatistics) {
        testAccuracy = stats.accuracy
        testLoss = stats.loss
        evalWallTime = stats.seconds
    }
}
