import FedCompress
import FedCore
import FedNN
import FedTensor
import FedTestSupport
import Testing

@testable import FedEngine

/// A client pool whose clients answer as scripted: client c sends the delta `deltas(c, round)`
/// densely (or through its uplink plan), finishing at `finish(c)` seconds; the engine sees only
/// what a pool returns.
final class ScriptedPool: ClientPool {
    var unavailable: Set<Int> = []
    var vanished: Set<Int> = []
    var finish: (Int) -> Double = { Double($0) }
    var deltas: (Int, Int) -> [Float]
    /// Replies to change before they are returned, by client.
    var tamper: [Int: (inout ClientReply) -> Void] = [:]
    /// What the rule of each client uploads and keeps (SCAFFOLD-like scripts).
    var uploads: (Int, RoundRequest) -> (upload: [String: [Float]], state: [String: [Float]]) = { _, _ in ([:], [:]) }
    private(set) var requests: [RoundRequest] = []
    var memories = Dictionary(uniqueKeysWithValues: (0..<20).map { ($0, ErrorFeedbackState()) })

    init(deltas: @escaping (Int, Int) -> [Float]) { self.deltas = deltas }

    func available(_ selected: [Int], round: Int) -> [Int] { selected.filter { !unavailable.contains($0) } }

    func link(of client: Int) -> ClientLink { ClientLink(bandwidth: 1e6 * Double(client + 1), latency: 0) }

    func train(_ request: RoundRequest) throws -> [ClientReply] {
        requests.append(request)
        return try request.tasks.filter { !vanished.contains($0.client) }.map { task in
            let delta = deltas(task.client, request.round)
            var payload: [UInt8] = []
            if let plan = task.uplink {
                payload = try plan.feedback.compress(
                    delta, codec: plan.codec, context: plan.context, state: memories[task.client]!
                ).payload
            } else {
                delta.withUnsafeBufferPointer { IdentityCodec.encode($0, into: &payload) }
            }
            let (upload, state) = uploads(task.client, request)
            var reply = ClientReply(
                client: task.client, payload: payload, upload: upload, state: state,
                uploadBytes: payload.count + upload.values.reduce(0) { $0 + IdentityCodec.size(count: $1.count) },
                sampleCount: 10 * (task.client + 1), samplesProcessed: 10, steps: 1, trainLoss: Double(task.client),
                finishTime: finish(task.client))
            tamper[task.client]?(&reply)
            return reply
        }
    }
}

@Suite struct RoundEngineTests {
    /// A 2 → 2 linear model: 6 parameters.
    static func model() throws -> Model { try Model(Linear(2, 2), inputShape: [2], seed: 1) }

    static func config(_ extra: String = "", perRound: Int = 3) throws -> ExperimentConfig {
        try ExperimentConfig.parse(
            yaml: """
                name: engine
                seed: 7
                rounds: 5
                model: mlp
                partition: {clients: 8}
                clients_per_round: \(perRound)
                \(extra)
                """)
    }

    /// Client c's constant delta: every coordinate (c + 1) / 100.
    static func constant(_ c: Int, _ round: Int) -> [Float] { [Float](repeating: Float(c + 1) / 100, count: 6) }

    /// FedAvg's step from `clients`: Σ n_i Δ_i / Σ n_i with n_i = 10 (c + 1).
    static func fedAvgStep(_ clients: [Int]) -> Float {
        let n = clients.map { Double(10 * ($0 + 1)) }
        let mean = zip(clients, n).reduce(0.0) { $0 + $1.1 * Double(Float($1.0 + 1) / 100) } / n.reduce(0, +)
        return Float(mean)
    }

    @Test func selectionIsSeededAndOverSelectionKeepsTheFirstFinishers() throws {
        let engine = try RoundEngine(config: try Self.config("over_selection: 1"), model: try Self.model())
        let selected = engine.selection(round: 1)
        #expect(selected.count == 6)
        #expect(selected == selected.sorted() && Set(selected).count == 6)
        #expect(
            try RoundEngine(config: try Self.config("over_selection: 1"), model: try Self.model())
                .selection(round: 1) == selected)
        #expect(engine.selection(round: 2) != selected)
        let pool = ScriptedPool(deltas: Self.constant)
        pool.finish = { 100 - Double($0) }  // higher ids finish first
        let before = Array(engine.model.parameters.values)
        let row = try engine.runRound(1, pool: pool)
        let kept = Array(selected.suffix(3))
        #expect(row.selected == 6 && row.completed == 3 && row.dropped == 3)
        #expect(row.virtualTime == 100 - Double(kept[0]))
        #expect(row.bytesUp == 3 * IdentityCodec.size(count: 6))
        #expect(row.bytesDown == 6 * IdentityCodec.size(count: 6))
        let step = Self.fedAvgStep(kept)
        for (a, b) in zip(engine.model.parameters.values, before) { #expect(abs(a - (b + step)) < 1e-6) }
        // Train loss: sample-weighted over the kept clients (loss c, n_c = 10 (c + 1)).
        let n = kept.map { Double(10 * ($0 + 1)) }
        #expect(abs(row.trainLoss! - zip(kept, n).reduce(0) { $0 + Double($1.0) * $1.1 } / n.reduce(0, +)) < 1e-12)
    }

    @Test func deadlineDropsStragglersAndTooFewFinishersSkipTheRound() throws {
        let engine = try RoundEngine(
            config: try Self.config("deadline_s: 4.5\nmin_completed: 2"), model: try Self.model())
        let selected = engine.selection(round: 1)
        let pool = ScriptedPool(deltas: Self.constant)
        pool.finish = { Double($0) }  // client c finishes at c seconds
        let before = Array(engine.model.parameters.values)
        let row = try engine.runRound(1, pool: pool)
        let inTime = selected.filter { Double($0) <= 4.5 }
        #expect(row.completed == inTime.count)
        #expect(row.virtualTime == (inTime.count < selected.count ? 4.5 : Double(selected.max()!)))
        if inTime.count >= 2 {
            let step = Self.fedAvgStep(inTime)
            for (a, b) in zip(engine.model.parameters.values, before) { #expect(abs(a - (b + step)) < 1e-6) }
        }
        // Round 2: everyone is late; the round is skipped and the model stays as it was.
        pool.finish = { _ in 10 }
        let after = Array(engine.model.parameters.values)
        let late = try engine.runRound(2, pool: pool)
        #expect(late.completed == 0 && late.skipped != nil && late.virtualTime == 4.5 && late.bytesUp == 0)
        #expect(Array(engine.model.parameters.values) == after)
    }

    @Test func dropoutsAndVanishedClientsAreDroppedTheRestAggregated() throws {
        let engine = try RoundEngine(config: try Self.config(), model: try Self.model())
        let selected = engine.selection(round: 1)
        let pool = ScriptedPool(deltas: Self.constant)
        pool.unavailable = [selected[0]]
        pool.vanished = [selected[1]]
        let before = Array(engine.model.parameters.values)
        let row = try engine.runRound(1, pool: pool)
        #expect(pool.requests[0].tasks.map(\.client) == Array(selected.dropFirst()))
        #expect(row.completed == 1 && row.dropped == 2)
        // Every selected client was sent the model.
        #expect(row.bytesDown == 3 * IdentityCodec.size(count: 6))
        let step = Self.fedAvgStep([selected[2]])
        for (a, b) in zip(engine.model.parameters.values, before) { #expect(abs(a - (b + step)) < 1e-6) }
    }

    @Test func rejectedUpdatesAreNotAggregatedButTheirBytesCount() throws {
        // Five clients a round, four of them sending a bad update in different ways.
        let engine = try RoundEngine(
            config: try Self.config("max_update_norm: 1", perRound: 5), model: try Self.model())
        let selected = engine.selection(round: 1)
        let pool = ScriptedPool(deltas: Self.constant)
        pool.tamper[selected[1]] = { $0.payload.removeLast(3) }  // truncated
        pool.tamper[selected[2]] = { $0.failure = "codec failed" }
        pool.tamper[selected[3]] = { $0.upload = ["control_delta": [1, 2]] }  // wrong length
        pool.deltas = { c, _ in
            c == selected[0]
                ? [0, 0, .nan, 0, 0, 0] : c == selected[4] ? [Float](repeating: 2, count: 6) : Self.constant(c, 1)
        }
        let before = Array(engine.model.parameters.values)
        let row = try engine.runRound(1, pool: pool)
        // The fifth client's update has norm 2·√6 > 1: rejected too, so nothing is left.
        #expect(row.completed == 0 && row.skipped != nil)
        #expect(Array(engine.model.parameters.values) == before)
        #expect(row.bytesUp == 5 * IdentityCodec.size(count: 6))  // as the replies declare them
        // Without the norm bound the fifth client's update is the only one aggregated.
        let free = try RoundEngine(config: try Self.config(perRound: 5), model: try Self.model())
        let row2 = try free.runRound(1, pool: pool)
        #expect(row2.completed == 1)
        for (a, b) in zip(free.model.parameters.values, before) { #expect(a == b + 2) }
    }

    @Test func strategyVectorsAreBroadcastAndClientStateKeptForAcceptedClients() throws {
        let engine = try RoundEngine(config: try Self.config("strategy: {name: scaffold}"), model: try Self.model())
        let pool = ScriptedPool(deltas: Self.constant)
        let first = engine.selection(round: 1)
        // Each client uploads Δc = (c + 1)·1 and keeps c_i = [c, …]; the first selected one fails.
        pool.uploads = { c, _ in
            (
                ["control_delta": [Float](repeating: Float(c + 1), count: 6)],
                ["control": [Float](repeating: Float(c), count: 6)]
            )
        }
        pool.tamper[first[0]] = { $0.failure = "lost" }
        let row = try engine.runRound(1, pool: pool)
        let request = pool.requests[0]
        #expect(request.vectors == ["control": [Float](repeating: 0, count: 6)])
        #expect(request.tasks.allSatisfy { $0.state.isEmpty })
        // The download is the model plus the control, both dense.
        #expect(row.bytesDown == 3 * 2 * IdentityCodec.size(count: 6))
        #expect(row.bytesUp == 3 * 2 * IdentityCodec.size(count: 6))
        // c = Σ Δc_i / N over the two accepted clients.
        let accepted = Array(first.dropFirst())
        let control = Float(accepted.reduce(0) { $0 + $1 + 1 }) / 8
        #expect(engine.strategy.state["control"] == [Float](repeating: control, count: 6))
        #expect(Set(engine.clientStates.keys) == Set(accepted))
        // Round 2 broadcasts the new control and hands each returning accepted client its state.
        pool.tamper = [:]
        _ = try engine.runRound(2, pool: pool)
        let second = pool.requests[1]
        #expect(second.vectors["control"] == [Float](repeating: control, count: 6))
        for task in second.tasks {
            #expect(
                task.state
                    == (accepted.contains(task.client)
                        ? ["control": [Float](repeating: Float(task.client), count: 6)] : [:]))
        }
    }

    @Test func checkpointRestoresTheEngineBitForBit() throws {
        for extra in [
            "strategy: {name: fedadam}",
            "strategy: {name: scaffold}",
            "strategy: {name: feddyn, alpha: 0.1}",
            """
            compression:
              uplink: {codec: topk, ratio: 0.5, error_feedback: ef21, per_tensor: false}
              downlink: {codec: fp16, error_feedback: residual}
            """,
            """
            compression:
              uplink: {codec: powersgd, rank: 1, error_feedback: dgc, min_tensor_elements: 3}
            """,
        ] {
            let config = try Self.config(extra)
            let pool = ScriptedPool(deltas: { c, r in (0..<6).map { Float(($0 + 1) * (c + 2) * r % 7) / 50 - 0.05 } })
            pool.uploads = { c, request in
                (request.vectors.isEmpty ? [:] : ["control_delta": [Float](repeating: Float(c) / 10, count: 6)], [:])
            }
            let a = try RoundEngine(config: config, model: try Self.model())
            for r in 1...2 { _ = try a.runRound(r, pool: pool) }
            var checkpoint = Checkpoint()
            a.save(into: &checkpoint)
            let dir = try TemporaryDirectory()
            try checkpoint.write(to: dir.path + "/c.safetensors")
            let b = try RoundEngine(config: config, model: try Self.model())
            try b.restore(from: try Checkpoint.read(path: dir.path + "/c.safetensors"))
            #expect(b.round == 2)
            let pool2 = ScriptedPool(deltas: pool.deltas)
            pool2.uploads = pool.uploads
            for (i, m) in pool.memories {
                pool2.memories[i] = ErrorFeedbackState(residual: m.residual, estimate: m.estimate, velocity: m.velocity)
            }
            let ra = try a.runRound(3, pool: pool)
            let rb = try b.runRound(3, pool: pool2)
            #expect(ra == rb, "\(extra)")
            #expect(
                a.model.parameters.values.map(\.bitPattern) == b.model.parameters.values.map(\.bitPattern), "\(extra)")
            #expect(a.strategy.state == b.strategy.state)
        }
    }

    /// The checkpoint saved after a round and the next round's start model are one copy of the
    /// global model, not two (a large model's server holds it once while the checkpoint is written
    /// and the clients train); without a save, or after the model changed, the request gets a copy
    /// of the model as it is.
    @Test func theCheckpointAndTheNextRoundShareOneCopyOfTheModel() throws {
        let engine = try RoundEngine(config: try Self.config(), model: try Self.model())
        let pool = ScriptedPool(deltas: Self.constant)
        _ = try engine.runRound(1, pool: pool)
        var checkpoint = Checkpoint()
        engine.save(into: &checkpoint)
        var again = Checkpoint()
        engine.save(into: &again)
        let saved = checkpoint.vectors["engine/global"]!
        #expect(saved == Array(engine.model.parameters.values))
        _ = try engine.runRound(2, pool: pool)
        let afterTwo = Array(engine.model.parameters.values)
        #expect(afterTwo != saved)
        func address(_ v: [Float]) -> UnsafePointer<Float>? { v.withUnsafeBufferPointer { $0.baseAddress } }
        #expect(address(pool.requests[1].model) == address(saved))
        #expect(address(again.vectors["engine/global"]!) == address(saved))
        // Round 3 without a save: a copy of round 2's model, not the stale one saved before it.
        _ = try engine.runRound(3, pool: pool)
        #expect(address(pool.requests[2].model) != address(saved))
        #expect(pool.requests[2].model == afterTwo)
    }

    @Test func checkpointsAreVerified() throws {
        let dir = try TemporaryDirectory()
        var checkpoint = Checkpoint()
        checkpoint.vectors["v"] = [1, 2, 3]
        checkpoint.values["k"] = "x"
        let path = dir.path + "/c.safetensors"
        try checkpoint.write(to: path)
        let back = try Checkpoint.read(path: path)
        #expect(back.vectors == checkpoint.vectors && back.values == checkpoint.values)
        var bytes = try AtomicFile.read(path)
        bytes[bytes.count - 2] ^= 0x10
        try AtomicFile.write(bytes, to: path)
        #expect(throws: CheckpointError.self) { try Checkpoint.read(path: path) }
        try AtomicFile.write(Array(bytes.prefix(bytes.count / 2)), to: path)
        #expect(throws: CheckpointError.self) { try Checkpoint.read(path: path) }
        try SafeTensors.write([("v", Tensor(shape: [1], scalars: [1]))], to: path)
        #expect(throws: CheckpointError.self) { try Checkpoint.read(path: path) }
        #expect(throws: CheckpointError.self) { try Checkpoint.read(path: dir.path + "/missing") }
        // A checkpoint of another model size is refused by the engine.
        let engine = try RoundEngine(config: try Self.config(), model: try Self.model())
        var other = Checkpoint()
        other.values["engine/round"] = "1"
        other.vectors["engine/global"] = [0, 0]
        #expect(throws: CheckpointError.self) { try engine.restore(from: other) }
        #expect(engine.round == 0)
    }
}
