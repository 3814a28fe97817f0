import Foundation

/// One row of `metrics.jsonl` / `metrics.csv`.
public struct RoundMetrics: Sendable, Equatable {
    public var round: Int
    /// Cumulative virtual seconds since the run began.
    public var virtualTime: Double
    /// Cumulative wall-clock seconds since the run began. Wall-clock fields are not reproducible
    /// and are excluded from equality.
    public var wallTime: Double
    public var bytesUp: Int
    public var bytesDown: Int
    public var trainLoss: Double?
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var selected: Int
    public var completed: Int
    public var dropped: Int
    /// Why the round was skipped, if it was.
    public var skipped: String?
    /// Wall seconds of the training phase (all selected clients, on the workers).
    public var trainWallTime: Double = 0
    /// Sum over clients of their local-training wall seconds (the pure training compute).
    public var clientComputeTime: Double = 0
    /// Wall seconds of the central evaluation (0 when the round was not evaluated).
    public var evalWallTime: Double = 0

    public init(
        round: Int, virtualTime: Double, wallTime: Double, bytesUp: Int, bytesDown: Int, trainLoss: Double?,
        testLoss: Double?, testAccuracy: Double?, selected: Int, completed: Int, dropped: Int, skipped: String?,
        trainWallTime: Double = 0, clientComputeTime: Double = 0, evalWallTime: Double = 0
    ) {
        self.round = round
        self.virtualTime = virtualTime
        self.wallTime = wallTime
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
        self.trainLoss = trainLoss
        self.testLoss = testLoss
        self.testAccuracy = testAccuracy
        self.selected = selected
        self.completed = completed
        self.dropped = dropped
        self.skipped = skipped
        self.trainWallTime = trainWallTime
        self.clientComputeTime = clientComputeTime
        self.evalWallTime = evalWallTime
    }

    public static let columns = [
        "round", "virtual_time_s", "wall_time_s", "bytes_up", "bytes_down", "train_loss", "test_loss", "test_accuracy",
        "selected", "completed", "dropped", "skipped", "train_wall_s", "client_compute_s", "eval_wall_s",
    ]

    public static func == (a: RoundMetrics, b: RoundMetrics) -> Bool {
        a.round == b.round && a.virtualTime == b.virtualTime && a.bytesUp == b.bytesUp && a.bytesDown == b.bytesDown
            && a.trainLoss == b.trainLoss && a.testLoss == b.testLoss && a.testAccuracy == b.testAccuracy
            && a.selected == b.selected && a.completed == b.completed && a.dropped == b.dropped
            && a.skipped == b.skipped
    }

    private func fields(json: Bool) -> [String] {
        // JSON has no NaN or infinity: a diverged loss is written as null there (and as nan in CSV).
        func num(_ x: Double?) -> String { x.map { json && !$0.isFinite ? "null" : "\($0)" } ?? (json ? "null" : "") }
        func str(_ s: String?) -> String {
            guard let s else { return json ? "null" : "" }
            let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return json ? "\"\(escaped)\"" : "\"\(s.replacingOccurrences(of: "\"", with: "\"\""))\""
        }
        return [
            "\(round)", num(virtualTime), num(wallTime), "\(bytesUp)", "\(bytesDown)", num(trainLoss), num(testLoss),
            num(testAccuracy), "\(selected)", "\(completed)", "\(dropped)", str(skipped), num(trainWallTime),
            num(clientComputeTime), num(evalWallTime),
        ]
    }

    /// One JSON object.
    public var jsonLine: String {
        "{" + zip(Self.columns, fields(json: true)).map { "\"\($0)\": \($1)" }.joined(separator: ", ") + "}"
    }

    /// One CSV row in `columns` order.
    public var csvLine: String { fields(json: false).joined(separator: ",") }

    /// The row a ``jsonLine`` holds (fields it lacks are empty or zero); nil if `line` is not a
    /// JSON object with a `round`.
    public init?(jsonLine line: some StringProtocol) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let round = object["round"] as? Int
        else { return nil }
        func num(_ k: String) -> Double? { (object[k] as? NSNumber)?.doubleValue }
        self.init(
            round: round, virtualTime: num("virtual_time_s") ?? 0, wallTime: num("wall_time_s") ?? 0,
            bytesUp: object["bytes_up"] as? Int ?? 0, bytesDown: object["bytes_down"] as? Int ?? 0,
            trainLoss: num("train_loss"), testLoss: num("test_loss"), testAccuracy: num("test_accuracy"),
            selected: object["selected"] as? Int ?? 0, completed: object["completed"] as? Int ?? 0,
            dropped: object["dropped"] as? Int ?? 0, skipped: object["skipped"] as? String,
            trainWallTime: num("train_wall_s") ?? 0, clientComputeTime: num("client_compute_s") ?? 0,
            evalWallTime: num("eval_wall_s") ?? 0)
    }
}
