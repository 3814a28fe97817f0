import FedNN
import FedTensor

/// FedImpro (Tang et al., ICLR 2024, "FedImpro: Measuring and Improving Client Update in Federated
/// Learning"): clients train the high-level part of the network on their real features at a cut
/// and on synthetic features drawn from everyone's per-class Gaussians, so the high-level part's
/// update looks like one computed on the whole federation's data.
///
/// Server: the model is averaged as ``FedAvg`` does (sample-weighted); the per-class feature
/// statistics the clients upload ("feature_mean", "feature_std", `classes × features` each) are
/// averaged plainly over the accepted clients, as the official code does, and broadcast with the
/// model together with the synthetic loss's weight ("fedimpro/weight"). Before the first round
/// the statistics are the official code's start: means uniform in [0, 1) from the run's seed,
/// every σ at the cap. Server state: "feature_mean", "feature_std", "rounds".
///
/// Client (``FedImproClientRule``): from the broadcast statistics, every step draws a balanced
/// synthetic batch from them, trains on CE(real) + w·CE(synthetic), the synthetic part reaching
/// only the high-level layers, and updates the statistics from the real batch's features
/// (``FeatureStatistics/update(features:labels:momentum:maximumStd:)``), in the official code's
/// order; the reported training loss is CE(real) (``FeatureSplit/step(images:labels:synthetic:realWeight:syntheticWeight:losses:observe:)``).
/// It uploads its statistics, with Gaussian noise of standard deviation σ_ε when asked (the
/// paper's privacy knob).
///
/// Weight w: `synthetic_weight`, times min(1, t / `ramp_rounds`) in round t when a ramp is set (the
/// official `gradual2half` schedule grows it as t / 500).
public final class FedImpro: Strategy {
    public let name = "fedimpro"
    public let cut: String
    public let classes: Int
    public let features: Int
    /// β of the clients' moving average of batch statistics (0: each batch replaces them).
    public let momentum: Double
    /// σ_max, the cap on every standard deviation (the official code's 0.1).
    public let maximumStd: Double
    /// σ_ε, the standard deviation of the noise added to uploaded statistics.
    public let privacyNoise: Double
    public let syntheticWeight: Double
    public let rampRounds: Int
    public private(set) var statistics: FeatureStatistics
    /// Rounds aggregated so far.
    public private(set) var rounds = 0
    private let average: FedAvg
    private let initial: FeatureStatistics

    public static let meanName = "feature_mean"
    public static let stdName = "feature_std"
    public static let weightName = "fedimpro/weight"

    /// FedImpro on the zoo model `model`, cut after the layer `cut`.
    /// - Throws: ``FedNN/ModelError`` for an unknown model or a cut it does not have.
    public init(
        model: String, cut: String, seed: UInt64, momentum: Double = 0, maximumStd: Double = 0.1,
        privacyNoise: Double = 0, syntheticWeight: Double = 1, rampRounds: Int = 0, serverLearningRate: Double = 1
    ) throws {
        let scratch = try ModelZoo.make(model, seed: seed)
        let split = try FeatureSplit(model: scratch, cut: cut)
        precondition(momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
        precondition(maximumStd > 0 && privacyNoise >= 0 && syntheticWeight >= 0 && rampRounds >= 0)
        self.cut = cut
        classes = scratch.outputShape.count
        features = split.featureCount
        self.momentum = momentum
        self.maximumStd = maximumStd
        self.privacyNoise = privacyNoise
        self.syntheticWeight = syntheticWeight
        self.rampRounds = rampRounds
        initial = .initial(classes: classes, features: features, std: Float(maximumStd), seed: seed)
        statistics = initial
        average = FedAvg(serverLearningRate: serverLearningRate)
    }

    public var state: [String: [Float]] {
        rounds == 0
            ? [:]
            : [Self.meanName: statistics.mean, Self.stdName: statistics.std, "rounds": [Float(rounds)]]
    }

    public func restore(state: [String: [Float]], parameterCount: Int) throws {
        if state.isEmpty {
            (statistics, rounds) = (initial, 0)
            return
        }
        let size = classes * features
        for key in state.keys.sorted() where ![Self.meanName, Self.stdName, "rounds"].contains(key) {
            throw StrategyError(.stateMismatch, "fedimpro: unknown state '\(key)'")
        }
        guard let mean = state[Self.meanName], let std = state[Self.stdName], mean.count == size, std.count == size,
            let r = state["rounds"], r.count == 1, r[0] >= 1, r[0] == r[0].rounded()
        else {
            throw StrategyError(
                .stateMismatch, "fedimpro: the state needs \(size) means and deviations and a round count")
        }
        guard mean.allSatisfy(\.isFinite) && std.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw StrategyError(
                .nonFiniteValue, "fedimpro: the feature statistics hold NaN, an infinity or a negative σ")
        }
        statistics = FeatureStatistics(classes: classes, features: features, mean: mean, std: std)
        rounds = Int(r[0])
    }

    /// w of the coming round (round `rounds + 1`).
    var currentWeight: Double {
        rampRounds == 0 ? syntheticWeight : syntheticWeight * min(1, Double(rounds + 1) / Double(rampRounds))
    }

    public func broadcast(parameterCount: Int) -> [String: [Float]] {
        [Self.meanName: statistics.mean, Self.stdName: statistics.std, Self.weightName: [Float(currentWeight)]]
    }

    public func uploads(parameterCount: Int) -> [String: Int] {
        [Self.meanName: classes * features, Self.stdName: classes * features]
    }

    public var clientAlgorithm: any ClientAlgorithm {
        FedImproClientAlgorithm(
            cut: cut, classes: classes, features: features, momentum: Float(momentum), maximumStd: Float(maximumStd),
            privacyNoise: Float(privacyNoise))
    }

    public func aggregate(
        global: UnsafeMutableBufferPointer<Float>, updates: [ClientUpdate], context: AggregationContext
    ) throws {
        let size = classes * features
        // The updates themselves are validated by FedAvg's aggregation, before anything changes.
        var uploaded: [FeatureStatistics] = []
        for update in updates {
            guard let mean = update.vectors[Self.meanName], let std = update.vectors[Self.stdName],
                mean.count == size, std.count == size
            else {
                throw StrategyError(
                    .missingVector, "client \(update.clientID): fedimpro needs \(size) feature means and deviations",
                    clientID: update.clientID)
            }
            guard DeltaAccumulator.allFinite(mean) && DeltaAccumulator.allFinite(std) else {
                throw StrategyError(
                    .nonFiniteValue, "client \(update.clientID): its feature statistics hold NaN or an infinity",
                    clientID: update.clientID)
            }
            uploaded.append(FeatureStatistics(classes: classes, features: features, mean: mean, std: std))
        }
        try average.aggregate(global: global, updates: updates, context: context)
        // Noise can push an uploaded σ below zero; a deviation is its magnitude.
        for k in uploaded.indices { uploaded[k].std = uploaded[k].std.map { abs($0) } }
        statistics = FeatureStatistics.average(uploaded)
        rounds += 1
    }
}

/// FedImpro's client side: the cut, the statistics' sizes and the clients' knobs.
public struct FedImproClientAlgorithm: ClientAlgorithm {
    public let cut: String
    public let classes: Int
    public let features: Int
    public let momentum: Float
    public let maximumStd: Float
    public let privacyNoise: Float

    /// The rule for one client's round from the broadcast statistics and weight. A broadcast
    /// without them (or of other sizes) gives a rule whose first step throws, naming what is
    /// missing: the client's update then fails instead of training on made-up statistics.
    public func makeRule(broadcast: [String: [Float]], state: [String: [Float]]) -> any ClientRule {
        let size = classes * features
        let mean = broadcast[FedImpro.meanName]
        let std = broadcast[FedImpro.stdName]
        let weight = broadcast[FedImpro.weightName]
        var problem: String?
        if mean?.count != size || std?.count != size {
            problem = "the broadcast lacks the \(size) feature means and deviations FedImpro trains with"
        } else if weight?.count != 1 || !(weight![0] >= 0) {
            problem = "the broadcast lacks FedImpro's synthetic loss weight"
        }
        return FedImproClientRule(
            algorithm: self,
            statistics: FeatureStatistics(
                classes: classes, features: features, mean: problem == nil ? mean! : [Float](repeating: 0, count: size),
                std: problem == nil ? std! : [Float](repeating: maximumStd, count: size)),
            syntheticWeight: problem == nil ? weight![0] : 0, problem: problem)
    }
}

/// One client's FedImpro round: trains with synthetic features (``SteppingClientRule``) and
/// uploads its feature statistics.
public final class FedImproClientRule: SteppingClientRule {
    public let algorithm: FedImproClientAlgorithm
    public private(set) var statistics: FeatureStatistics
    public let syntheticWeight: Float
    private var split: FeatureSplit?
    private var rng = SeededRNG(seed: 0)
    private let losses = (real: SoftmaxCrossEntropy(), synthetic: SoftmaxCrossEntropy())
    /// Why this rule cannot train (a broadcast without FedImpro's vectors), if it cannot.
    public let problem: String?

    public init(
        algorithm: FedImproClientAlgorithm, statistics: FeatureStatistics, syntheticWeight: Float,
        problem: String? = nil
    ) {
        self.algorithm = algorithm
        self.statistics = statistics
        self.syntheticWeight = syntheticWeight
        self.problem = problem
    }

    public func prepare(seed: UInt64, stream: String) { rng = SeededRNG(seed: seed, stream: stream + "/fedimpro") }

    public func beginRound(global: UnsafeBufferPointer<Float>) {}

    public func adjustGradients(_ gradients: UnsafeMutableBufferPointer<Float>, parameters: UnsafeBufferPointer<Float>)
    {}

    /// - Throws: ``StrategyError`` when the broadcast lacked FedImpro's vectors; ``FedNN/ModelError``
    ///   for a label outside the classes or a model without the cut.
    public func step(model: Model, images: Tensor, labels: [Int32]) throws -> (loss: Float, correct: Int) {
        if let problem { throw StrategyError(.missingVector, "fedimpro: \(problem)") }
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= algorithm.classes }) {
            throw ModelError(.invalidInput, "label \(bad) outside 0..<\(algorithm.classes)")
        }
        if split?.model !== model { split = try FeatureSplit(model: model, cut: algorithm.cut) }
        let split = split!
        let synthetic = syntheticWeight > 0 ? statistics.sample(forBatchOf: labels.count, rng: &rng) : nil
        let (momentum, cap) = (algorithm.momentum, algorithm.maximumStd)
        let result = try split.step(
            images: images, labels: labels, synthetic: synthetic, syntheticWeight: syntheticWeight, losses: losses
        ) { real in
            statistics.update(features: real, labels: labels, momentum: momentum, maximumStd: cap)
        }
        return (result.real, result.correct)
    }

    public func endRound(parameters: UnsafeBufferPointer<Float>, steps: Int, learningRate: Float) -> ClientRuleOutput {
        var mean = statistics.mean
        var std = statistics.std
        if algorithm.privacyNoise > 0 {
            let s = algorithm.privacyNoise
            for j in mean.indices { mean[j] += s * rng.nextNormal() }
            for j in std.indices { std[j] += s * rng.nextNormal() }
        }
        return ClientRuleOutput(upload: [FedImpro.meanName: mean, FedImpro.stdName: std])
    }
}
