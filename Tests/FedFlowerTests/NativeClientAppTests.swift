import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Testing

@testable import FedFlower

/// The node's ClientApp: what it answers to train and evaluate instructions, and the error it
/// answers with when it cannot.
@Suite struct NativeClientAppTests {
    static let model = "mlp-16"
    let train = SyntheticDataset.make(count: 96, classes: 10, height: 28, width: 28, seed: 1)
    let test = SyntheticDataset.make(count: 50, classes: 10, height: 28, width: 28, seed: 2)
    let defaults = ExperimentConfig.LocalTraining(epochs: 1, batchSize: 16, learningRate: 0.01)

    func app() throws -> NativeClientApp {
        try NativeClientApp(model: Self.model, train: train, test: test, defaults: defaults, seed: 5, client: 3)
    }

    /// The model's initial state as an ArrayRecord, in `order`.
    func arrays(
        _ dtype: NumpyArray.DType = .float32, reversed: Bool = false
    ) throws -> [(key: String, array: FlowerArray)] {
        let state = try ModelZoo.make(Self.model, seed: 9).stateDict()
        let items = state.map { (name, tensor) -> (key: String, array: FlowerArray) in
            let numpy =
                dtype == .float64
                ? NumpyArray(float64: tensor.scalars.map(Double.init), shape: tensor.shape.dims)
                : NumpyArray(float32: tensor.scalars, shape: tensor.shape.dims)
            return (name, FlowerArray(numpy))
        }
        return reversed ? items.reversed() : items
    }

    func config(_ items: [(String, Flwr_Proto_ConfigRecordValue.OneOf_Value)]) -> Flwr_Proto_ConfigRecord {
        var c = Flwr_Proto_ConfigRecord()
        c.items = items.map { key, value in
            var item = Flwr_Proto_ConfigRecord.Item()
            item.key = key
            item.value.value = value
            return item
        }
        return c
    }

    func metrics(_ record: FlowerRecordDict.Record?) -> [String: Double] {
        guard case .metrics(let m)? = record else { return [:] }
        var out: [String: Double] = [:]
        for item in m.items {
            switch item.value.value {
            case .double(let d)?: out[item.key] = d
            case .sint64(let n)?: out[item.key] = Double(n)
            default: break
            }
        }
        return out
    }

    func failure(_ result: Result<FlowerRecordDict, FlowerError>) -> FlowerError? {
        if case .failure(let e) = result { return e }
        return nil
    }

    @Test func trainRunsTheEnginesLocalUpdateAndAnswersWithTheInstructionsKeys() throws {
        let instruction = try arrays(reversed: true)
        let content = FlowerRecordDict([
            ("arrays", .arrays(instruction)),
            (
                "config",
                .config(config([("lr", .double(0.1)), ("local-epochs", .sint64(2)), ("server-round", .sint64(4))]))
            ),
        ])
        let reply = try app().handle(type: "train", content: content).get()
        #expect(reply.items.map(\.key) == ["arrays", "metrics"])
        guard case .arrays(let out)? = reply["arrays"] else {
            Issue.record("no arrays")
            return
        }
        #expect(out.map(\.key) == instruction.map(\.key))
        #expect(out.allSatisfy { $0.array.dtype == "float32" })
        // The same local update a simulated client runs: same start, settings, client and round.
        let local = try LocalUpdate(
            model: Self.model, seed: 5,
            training: ExperimentConfig.LocalTraining(epochs: 2, batchSize: 16, learningRate: 0.1))
        let start = try ModelZoo.make(Self.model, seed: 9)
        let expected = try Array(start.parameters.values).withUnsafeBufferPointer {
            try local.run(
                client: 3, round: 4, indices: Array(0..<train.count), data: train, start: $0, seed: 5,
                rule: PlainClientRule())
        }
        let state = Dictionary(uniqueKeysWithValues: local.model.stateDict().map { ($0.name, $0.tensor.scalars) })
        for (key, array) in out {
            #expect(try array.numpy().floats() == state[key]!, "\(key)")
        }
        let m = metrics(reply["metrics"])
        #expect(m["num-examples"] == 96)
        #expect(m["train_loss"] == expected.trainLoss)
        #expect(Set(m.keys) == ["num-examples", "train_loss"])
    }

    @Test func float64InstructionsAreAnsweredInFloat64() throws {
        let reply = try app().handle(
            type: "train", content: FlowerRecordDict([("weights", .arrays(try arrays(.float64)))])
        ).get()
        guard case .arrays(let out)? = reply["weights"] else {
            Issue.record("the reply's ArrayRecord keeps the instruction's record name")
            return
        }
        #expect(out.allSatisfy { $0.array.dtype == "float64" })
    }

    @Test func evaluateReportsTheModelsTestAccuracy() throws {
        let reply = try app().handle(type: "evaluate", content: FlowerRecordDict([("arrays", .arrays(try arrays()))]))
            .get()
        let m = metrics(reply["metrics"])
        let model = try ModelZoo.make(Self.model, seed: 9)
        let stats = try Trainer.evaluate(model, on: test, batchSize: 100)
        #expect(m["eval_acc"] == stats.accuracy && m["eval_loss"] == stats.loss && m["num-examples"] == 50)
    }

    @Test func whatTheNodeCannotDoIsAnErrorNamingIt() throws {
        let app = try app()
        var good = try arrays()
        func train(
            _ arrays: [(key: String, array: FlowerArray)], config extra: Flwr_Proto_ConfigRecord? = nil
        )
            -> FlowerError?
        {
            var items: [(key: String, record: FlowerRecordDict.Record)] = [("arrays", .arrays(arrays))]
            if let extra { items.append(("config", .config(extra))) }
            return failure(app.handle(type: "train", content: FlowerRecordDict(items)))
        }
        // A key the model does not have.
        var extra = good
        extra.append(("head.weight", FlowerArray(NumpyArray(float32: [1], shape: [1]))))
        let unknown = try #require(train(extra))
        #expect(unknown.code == .badInstruction && unknown.message.contains("'head.weight'"))
        // A key missing.
        let missing = try #require(train(Array(good.dropFirst())))
        #expect(missing.message.contains("'\(good[0].key)'"))
        // A wrong shape.
        var reshaped = good
        let n = try reshaped[0].array.numpy().count
        reshaped[0].array = FlowerArray(NumpyArray(float32: [Float](repeating: 0, count: n), shape: [n]))
        #expect(train(reshaped)?.code == .badInstruction)
        // An element type it does not compute with.
        var ints = good
        let count = try ints[0].array.numpy().count
        ints[0].array = FlowerArray(
            try NumpyArray(
                dtype: .int32, shape: try ints[0].array.numpy().shape, elements: [UInt8](repeating: 0, count: 4 * count)
            ))
        let dtype = try #require(train(ints))
        #expect(dtype.code == .unsupportedDType && dtype.message.contains("int32"))
        // NaN weights.
        good[1].array = FlowerArray(
            NumpyArray(
                float32: [Float](repeating: .nan, count: try good[1].array.numpy().count),
                shape: try good[1].array.numpy().shape))
        #expect(train(good)?.message.contains("NaN") == true)
        // Bad settings from the ServerApp.
        #expect(train(try arrays(), config: config([("lr", .double(-1))]))?.code == .badInstruction)
        #expect(train(try arrays(), config: config([("local-epochs", .string("two"))]))?.code == .badInstruction)
        // Not one ArrayRecord.
        #expect(failure(app.handle(type: "train", content: FlowerRecordDict()))?.code == .badInstruction)
        let two = FlowerRecordDict([("a", .arrays(try arrays())), ("b", .arrays(try arrays()))])
        #expect(failure(app.handle(type: "train", content: two))?.code == .badInstruction)
        // A message type it does not serve.
        let query = try #require(failure(app.handle(type: "query", content: FlowerRecordDict())))
        #expect(query.message.contains("query"))
        // "train.<action>" is a train instruction.
        #expect(
            (try? app.handle(type: "train.custom", content: FlowerRecordDict([("arrays", .arrays(try arrays()))])).get())
                != nil)
    }

    @Test func anUnknownModelFailsAtStart() {
        #expect(throws: (any Error).self) {
            try NativeClientApp(model: "vgg", train: train, test: nil, defaults: defaults, seed: 0, client: 0)
        }
    }
}
