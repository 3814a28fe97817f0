import FedCore
import FedData
import FedEngine
import FedNN
import FedTensor
import Foundation

/// What a FedSwift node runs in place of a Python ClientApp: it trains and evaluates a FedSwift
/// model on the node's own data, with the local update the simulator's and the native runtime's
/// clients run (``LocalUpdate``).
///
/// A `train` instruction carries one ArrayRecord (the model, under PyTorch's `state_dict` names)
/// and may carry a ConfigRecord; the reply has an ArrayRecord with exactly the instruction's keys,
/// in its order and element types, and a MetricRecord `metrics` with `train_loss` and
/// `num-examples`. An `evaluate` instruction's reply has a MetricRecord `metrics` with
/// `eval_loss`, `eval_acc` and `num-examples`. These are the names of Flower's PyTorch quickstart,
/// so FedAvg aggregates FedSwift and Python nodes side by side.
///
/// The ConfigRecord may set, per round, `lr`, `momentum`, `weight-decay`, `local-epochs` and
/// `batch-size`; `server-round` names the round (it seeds the shuffling). What the node cannot do
/// (another model, a missing or unknown key, a wrong shape, an element type it does not compute
/// with) it answers with an error reply naming it.
public final class NativeClientApp: @unchecked Sendable {
    public let modelName: String
    public let train: LabeledDataset
    public let test: LabeledDataset?
    public let defaults: ExperimentConfig.LocalTraining
    public let seed: UInt64
    /// The client number that names the node's random streams.
    public let client: Int
    private var updates: [String: LocalUpdate] = [:]

    /// Config keys a train instruction may set.
    public static let configKeys = ["lr", "momentum", "weight-decay", "local-epochs", "batch-size", "server-round"]

    public init(
        model: String, train: LabeledDataset, test: LabeledDataset?, defaults: ExperimentConfig.LocalTraining,
        seed: UInt64, client: Int
    ) throws {
        _ = try ModelZoo.make(model, seed: seed)  // an unknown model fails here, not at the first round
        modelName = model
        self.train = train
        self.test = test
        self.defaults = defaults
        self.seed = seed
        self.client = client
    }

    /// The reply content to `instruction`'s, or the error to reply with.
    public func handle(type: String, content: FlowerRecordDict) -> Result<FlowerRecordDict, FlowerError> {
        let action = type.split(separator: ".", maxSplits: 1).first.map(String.init) ?? type
        do {
            switch action {
            case "train": return .success(try trainRound(content))
            case "evaluate": return .success(try evaluate(content))
            default: throw FlowerError(.badInstruction, "message type '\(type)' is not supported (train, evaluate)")
            }
        } catch let error as FlowerError {
            return .failure(error)
        } catch {
            return .failure(FlowerError(.badInstruction, "\(error)"))
        }
    }

    /// The instruction's only ArrayRecord.
    func arrays(_ content: FlowerRecordDict) throws -> (key: String, arrays: [(key: String, array: FlowerArray)]) {
        let records = content.arrayRecords
        guard records.count == 1 else {
            throw FlowerError(.badInstruction, "the instruction carries \(records.count) ArrayRecords; expected one")
        }
        return records[0]
    }

    /// Loads `arrays` into `model` (every key of the model's state, no other, each of its shape).
    func load(_ arrays: [(key: String, array: FlowerArray)], into model: Model) throws -> [String: NumpyArray.DType] {
        var state: [(name: String, tensor: Tensor)] = []
        var types: [String: NumpyArray.DType] = [:]
        let expected = model.stateDict()
        let known = Set(expected.map(\.name))
        let unknown = arrays.map(\.key).filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw FlowerError(
                .badInstruction,
                "model '\(modelName)' has no tensor \(unknown.map { "'\($0)'" }.joined(separator: ", "))")
        }
        let given = Set(arrays.map(\.key))
        let missing = expected.map(\.name).filter { !given.contains($0) }
        guard missing.isEmpty else {
            throw FlowerError(
                .badInstruction, "the instruction lacks \(missing.map { "'\($0)'" }.joined(separator: ", "))")
        }
        for (key, array) in arrays {
            let numpy = try array.numpy()
            let values: [Float]
            switch numpy.dtype {
            case .float16, .float32, .float64: values = try numpy.floats()
            case .int64: values = try numpy.int64s().map { Float($0) }  // BatchNorm's num_batches_tracked
            default:
                throw FlowerError(
                    .unsupportedDType, "'\(key)' is \(numpy.dtype.rawValue); the node computes with floats")
            }
            guard values.allSatisfy(\.isFinite) else {
                throw FlowerError(.badInstruction, "'\(key)' contains NaN or infinite values")
            }
            types[key] = numpy.dtype
            state.append((key, Tensor(shape: Shape(numpy.shape), scalars: values)))
        }
        do {
            try model.loadStateDict(state, strict: true)
        } catch let error as ModelError {
            throw FlowerError(.badInstruction, error.message)
        }
        return types
    }

    /// `model`'s state under the instruction's keys, in their order and element types.
    func arrays(
        of model: Model, keys: [String], types: [String: NumpyArray.DType]
    ) -> [(key: String, array: FlowerArray)] {
        let state = Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.name, $0.tensor) })
        return keys.map { key in
            let t = state[key]!
            let dims = t.shape.dims
            let numpy: NumpyArray
            switch types[key]! {
            case .float64: numpy = NumpyArray(float64: t.scalars.map(Double.init), shape: dims)
            case .int64: numpy = NumpyArray(int64: t.scalars.map { Int64($0.rounded()) }, shape: dims)
            case .float16:
                let halves = t.scalars.map { Float16($0).bitPattern }
                numpy = try! NumpyArray(dtype: .float16, shape: dims, elements: halves.withUnsafeBytes { Array($0) })
            default: numpy = NumpyArray(float32: t.scalars, shape: dims)
            }
            return (key, FlowerArray(numpy))
        }
    }

    /// The local training the instruction's ConfigRecord asks for.
    func training(_ content: FlowerRecordDict) throws -> (ExperimentConfig.LocalTraining, round: Int) {
        var t = defaults
        var round = 0
        for (_, config) in content.configRecords {
            for item in config.items {
                let v = item.value
                func number() throws -> Double {
                    switch v.value {
                    case .double(let d)?: return d
                    case .sint64(let n)?: return Double(n)
                    case .uint64(let n)?: return Double(n)
                    default: throw FlowerError(.badInstruction, "config '\(item.key)' is not a number")
                    }
                }
                func integer() throws -> Int {
                    let d = try number()
                    guard d.rounded() == d, abs(d) < 1e9 else {
                        throw FlowerError(.badInstruction, "config '\(item.key)' is not an integer")
                    }
                    return Int(d)
                }
                switch item.key {
                case "lr": t.learningRate = try number()
                case "momentum": t.momentum = try number()
                case "weight-decay": t.weightDecay = try number()
                case "local-epochs": t.epochs = try integer()
                case "batch-size": t.batchSize = try integer()
                case "server-round": round = try integer()
                default: continue
                }
            }
        }
        guard t.learningRate > 0, t.learningRate.isFinite, t.momentum >= 0, t.momentum < 1, t.weightDecay >= 0,
            t.epochs >= 1, t.batchSize >= 1
        else {
            throw FlowerError(
                .badInstruction,
                "local training lr \(t.learningRate), momentum \(t.momentum), weight-decay \(t.weightDecay), "
                    + "local-epochs \(t.epochs), batch-size \(t.batchSize) is not valid")
        }
        return (t, round)
    }

    /// A model replica with its optimizer for `training`, made once per distinct setting.
    func update(for training: ExperimentConfig.LocalTraining) throws -> LocalUpdate {
        let key =
            "\(training.learningRate) \(training.momentum) \(training.weightDecay) \(training.epochs) \(training.batchSize)"
        if let u = updates[key] { return u }
        let u = try LocalUpdate(model: modelName, seed: seed, training: training)
        updates[key] = u
        return u
    }

    func trainRound(_ content: FlowerRecordDict) throws -> FlowerRecordDict {
        let (recordKey, arrays) = try arrays(content)
        let (training, round) = try training(content)
        let local = try update(for: training)
        let types = try load(arrays, into: local.model)
        let start = Array(local.model.parameters.values)
        let reply = try start.withUnsafeBufferPointer {
            try local.run(
                client: client, round: round, indices: Array(0..<train.count), data: train, start: $0, seed: seed,
                rule: PlainClientRule())
        }
        guard local.model.parameters.values.allSatisfy(\.isFinite) else {
            throw FlowerError(.badInstruction, "local training diverged (NaN or infinite weights); lower lr")
        }
        var metrics = Flwr_Proto_MetricRecord()
        metrics.items = [
            .init(key: "train_loss", value: .double(reply.trainLoss)),
            .init(key: "num-examples", value: .sint64(Int64(train.count))),
        ]
        return FlowerRecordDict([
            (recordKey, .arrays(self.arrays(of: local.model, keys: arrays.map(\.key), types: types))),
            ("metrics", .metrics(metrics)),
        ])
    }

    func evaluate(_ content: FlowerRecordDict) throws -> FlowerRecordDict {
        guard let test else { throw FlowerError(.badInstruction, "this node has no test data to evaluate on") }
        let (_, arrays) = try arrays(content)
        let local = try update(for: defaults)
        _ = try load(arrays, into: local.model)
        let stats = try Trainer.evaluate(local.model, on: test, batchSize: 100)
        var metrics = Flwr_Proto_MetricRecord()
        metrics.items = [
            .init(key: "eval_loss", value: .double(stats.loss)),
            .init(key: "eval_acc", value: .double(stats.accuracy)),
            .init(key: "num-examples", value: .sint64(Int64(test.count))),
        ]
        return FlowerRecordDict([("metrics", .metrics(metrics))])
    }
}

extension Flwr_Proto_MetricRecord.Item {
    init(key: String, value: Flwr_Proto_MetricRecordValue.OneOf_Value) {
        self.init()
        self.key = key
        self.value.value = value
    }
}
