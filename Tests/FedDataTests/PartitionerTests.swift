import FedTensor
import Foundation
import Testing

@testable import FedData

@Suite struct PartitionerTests {
    /// 10 classes × 600 samples, labels interleaved (sample i has label i mod 10).
    static let interleaved = (0..<6000).map { Int32($0 % 10) }
    /// 10 classes × 600 samples, sorted by label (sample i has label i / 600).
    static let sorted = (0..<6000).map { Int32($0 / 600) }

    static let schemes: [PartitionScheme] = [
        .iid, .dirichlet(alpha: 0.5), .dirichlet(alpha: 100, minSize: 0), .shards(perClient: 2),
        .quantitySkew(sigma: 1), .quantitySkew(sigma: 0),
    ]

    /// Mean over clients of the largest share one class has of the client's samples.
    func meanMaxClassShare(_ partition: Partition, labels: [Int32]) -> Double {
        let table = partition.classCounts(labels: labels, classes: 10)
        let shares = table.map { Double($0.max()!) / Double(max(1, $0.reduce(0, +))) }
        return shares.reduce(0, +) / Double(shares.count)
    }

    @Test(arguments: schemes)
    func everyIndexIsInExactlyOneClientInAscendingOrder(scheme: PartitionScheme) throws {
        for (labels, clients) in [(Self.interleaved, 100), (Self.sorted, 7)] {
            let partition = try Partitioner.split(
                labels: labels, classes: 10, clients: clients, scheme: scheme, seed: 1)
            #expect(partition.clientCount == clients)
            #expect(partition.clientIndices.allSatisfy { zip($0, $0.dropFirst()).allSatisfy { $0 < $1 } })
            #expect(partition.clientIndices.flatMap { $0 }.sorted() == Array(0..<labels.count))
            #expect(partition.counts.reduce(0, +) == labels.count)
        }
    }

    @Test(arguments: schemes)
    func sameSeedGivesSamePartitionAndOtherSeedsDiffer(scheme: PartitionScheme) throws {
        func split(_ seed: UInt64) throws -> [[Int]] {
            try Partitioner.split(labels: Self.interleaved, classes: 10, clients: 50, scheme: scheme, seed: seed)
                .clientIndices
        }
        #expect(try split(3) == split(3))
        #expect(try split(3) != split(4))
    }

    @Test func schemesUseIndependentStreams() throws {
        let iid = try Partitioner.split(labels: Self.interleaved, classes: 10, clients: 50, scheme: .iid, seed: 0)
        let skew = try Partitioner.split(
            labels: Self.interleaved, classes: 10, clients: 50, scheme: .quantitySkew(sigma: 0), seed: 0)
        // Both deal a shuffled order in near-equal pieces; only the stream name separates them.
        #expect(iid.counts == skew.counts)
        #expect(iid.clientIndices != skew.clientIndices)
    }

    @Test func iidSizesDifferByAtMostOne() throws {
        let partition = try Partitioner.split(labels: Self.interleaved, classes: 10, clients: 7, scheme: .iid, seed: 0)
        #expect(partition.counts.sorted() == [857, 857, 857, 857, 857, 857, 858].sorted())
        #expect(partition.counts.max()! - partition.counts.min()! == 1)
        // IID: every client's class mix is near 1/10 each (857 samples: a class share sd ≈ 0.01).
        #expect(meanMaxClassShare(partition, labels: Self.interleaved) < 0.14)
    }

    @Test func dirichletRespectsMinimumSize() throws {
        // 20 clients of 300 on average; about one draw in ten gives every client 150.
        let constrained = try Partitioner.split(
            labels: Self.interleaved, classes: 10, clients: 20, scheme: .dirichlet(alpha: 0.5, minSize: 150), seed: 0)
        #expect(constrained.counts.min()! >= 150)
        // The first draw of the same stream (accepted when minSize is 0) violates it, so resampling happened.
        let unconstrained = try Partitioner.split(
            labels: Self.interleaved, classes: 10, clients: 20, scheme: .dirichlet(alpha: 0.5, minSize: 0), seed: 0)
        #expect(unconstrained.counts.min()! < 150)
    }

    @Test func smallAlphaSkewsLabelsFarMoreThanLargeAlpha() throws {
        func split(_ alpha: Double) throws -> Partition {
            try Partitioner.split(
                labels: Self.interleaved, classes: 10, clients: 10, scheme: .dirichlet(alpha: alpha, minSize: 10),
                seed: 0)
        }
        let skewed = meanMaxClassShare(try split(0.1), labels: Self.interleaved)
        let uniform = try split(100)
        let nearUniform = meanMaxClassShare(uniform, labels: Self.interleaved)
        // Measured with seed 0: 0.58 for alpha 0.1, 0.115 for alpha 100 (exactly uniform would be 0.1).
        #expect(skewed > 0.45, "alpha 0.1: mean max class share \(skewed)")
        #expect(nearUniform < 0.13, "alpha 100: mean max class share \(nearUniform)")
        #expect(skewed > 4 * nearUniform)
        // alpha 100: each client share of a class is Beta(100, 900), sd 0.0095 around 0.1, so every
        // class proportion within each client stays within 0.1 ± 0.05.
        for row in uniform.classCounts(labels: Self.interleaved, classes: 10) {
            let size = Double(row.reduce(0, +))
            #expect(row.allSatisfy { abs(Double($0) / size - 0.1) < 0.05 }, "class counts \(row)")
        }
    }

    @Test func dirichletThrowsWhenMinimumSizeIsUnreachable() {
        let error = #expect(throws: DataError.self) {
            try Partitioner.split(
                labels: Self.interleaved, classes: 10, clients: 100, scheme: .dirichlet(alpha: 0.01, minSize: 50),
                seed: 0)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("lower minSize or raise alpha") == true)
    }

    @Test func shardsGiveEqualSizesAndFewLabels() throws {
        for (clients, perClient) in [(100, 2), (10, 3), (20, 1)] {
            let partition = try Partitioner.split(
                labels: Self.sorted, classes: 10, clients: clients, scheme: .shards(perClient: perClient), seed: 0)
            let shardSize = 6000 / (clients * perClient)
            #expect(partition.counts == [Int](repeating: perClient * shardSize, count: clients))
            for row in partition.classCounts(labels: Self.sorted, classes: 10) {
                let distinct = row.filter { $0 > 0 }.count
                #expect(distinct >= 1 && distinct <= perClient, "client class counts \(row)")
                #expect(row.allSatisfy { $0 % shardSize == 0 })
            }
        }
    }

    @Test func shardsKeepEverySampleWhenCountIsNotAMultiple() throws {
        // 6000 samples in 7 × 3 = 21 shards: 15 shards of 286 and 6 of 285.
        let partition = try Partitioner.split(
            labels: Self.sorted, classes: 10, clients: 7, scheme: .shards(perClient: 3), seed: 0)
        #expect(partition.counts.reduce(0, +) == 6000)
        #expect(partition.counts.allSatisfy { $0 >= 3 * 285 && $0 <= 3 * 286 })
    }

    @Test func quantitySkewSizesSumToCountAndGrowWithSigma() throws {
        func sizes(_ sigma: Double) throws -> [Int] {
            try Partitioner.split(
                labels: Self.interleaved, classes: 10, clients: 100, scheme: .quantitySkew(sigma: sigma), seed: 0
            ).counts
        }
        let flat = try sizes(0)
        let skewed = try sizes(2)
        #expect(flat.reduce(0, +) == 6000)
        #expect(skewed.reduce(0, +) == 6000)
        #expect(flat == [Int](repeating: 60, count: 100))
        #expect(skewed.min()! >= 1)
        let ratio = Double(skewed.max()!) / Double(skewed.min()!)
        #expect(ratio > 50, "sigma 2: max/min size \(skewed.max()!)/\(skewed.min()!)")
        // Labels stay IID: pooled over the 10 largest clients, no class exceeds 13 %.
        let largest = try Partitioner.split(
            labels: Self.interleaved, classes: 10, clients: 100, scheme: .quantitySkew(sigma: 2), seed: 0)
        let top = largest.classCounts(labels: Self.interleaved, classes: 10)
            .sorted { $0.reduce(0, +) > $1.reduce(0, +) }
        let pooled = (0..<10).map { c in top.prefix(10).reduce(0) { $0 + $1[c] } }
        #expect(Double(pooled.max()!) / Double(pooled.reduce(0, +)) < 0.13, "pooled class counts \(pooled)")
    }

    @Test func quantitySkewGivesEveryClientASampleEvenWithExtremeSigma() throws {
        let partition = try Partitioner.split(
            labels: Self.interleaved, classes: 10, clients: 1000, scheme: .quantitySkew(sigma: 50), seed: 0)
        #expect(partition.counts.min()! >= 1)
        #expect(partition.counts.reduce(0, +) == 6000)
    }

    @Test(arguments: [
        (10, PartitionScheme.iid, 0, "clients"),
        (10, PartitionScheme.iid, 6001, "clients"),
        (10, PartitionScheme.dirichlet(alpha: 0), 10, "alpha"),
        (10, PartitionScheme.dirichlet(alpha: -1), 10, "alpha"),
        (10, PartitionScheme.dirichlet(alpha: .infinity), 10, "alpha"),
        (10, PartitionScheme.dirichlet(alpha: 1, minSize: 601), 10, "minSize"),
        (10, PartitionScheme.dirichlet(alpha: 1, minSize: -1), 10, "minSize"),
        (10, PartitionScheme.shards(perClient: 0), 10, "perClient"),
        (10, PartitionScheme.shards(perClient: 601), 10, "perClient"),
        (10, PartitionScheme.quantitySkew(sigma: -0.5), 10, "sigma"),
        (10, PartitionScheme.quantitySkew(sigma: .nan), 10, "sigma"),
        (0, PartitionScheme.iid, 10, "classes"),
    ])
    func invalidArgumentsThrowNamingTheParameter(classes: Int, scheme: PartitionScheme, clients: Int, name: String) {
        let error = #expect(throws: DataError.self) {
            try Partitioner.split(labels: Self.interleaved, classes: classes, clients: clients, scheme: scheme, seed: 0)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix(name + " must") == true, "message: \(error?.message ?? "")")
        #expect(error?.message.contains("found") == true)
    }

    @Test func labelOutsideClassesThrows() {
        let error = #expect(throws: DataError.self) {
            try Partitioner.split(labels: [0, 1, 5, 2], classes: 3, clients: 2, scheme: .iid, seed: 0)
        }
        #expect(error?.code == .labelOutOfRange)
        #expect(error?.message.contains("index 2") == true)
    }

    @Test func classCountsTabulateClientByClass() {
        let partition = Partition(clientIndices: [[0, 2, 3], [1], []])
        #expect(partition.counts == [3, 1, 0])
        #expect(partition.classCounts(labels: [0, 1, 1, 2], classes: 3) == [[1, 1, 1], [0, 1, 0], [0, 0, 0]])
    }

    @Test func summaryReportsSizesAndHidesRowsBeyondTwenty() throws {
        let partition = try Partitioner.split(
            labels: Self.interleaved, classes: 10, clients: 100, scheme: .quantitySkew(sigma: 0), seed: 0)
        let summary = partition.summary(labels: Self.interleaved, classes: 10)
        let lines = summary.split(separator: "\n")
        #expect(lines[0] == "100 clients, 6000 samples, 10 classes")
        #expect(lines[1] == "client size: min 60, median 60, max 60")
        #expect(lines.count == 2 + 1 + 20 + 1)
        #expect(lines.last == "… 80 more clients hidden")
        let small = Partition(clientIndices: [[0, 2, 3], [1]]).summary(labels: [0, 1, 1, 2], classes: 3)
        #expect(small.contains("median 2, max 3"))
        #expect(!small.contains("hidden"))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory)))
    func realFashionMNISTDirichletSplit() throws {
        let file = try IDXFile(contentsOf: FashionMNIST.defaultDirectory + "/train-labels-idx1-ubyte.gz")
        let labels = file.payload.map { Int32($0) }
        #expect(labels.count == 60_000)
        let partition = try Partitioner.split(
            labels: labels, classes: 10, clients: 100, scheme: .dirichlet(alpha: 0.5, minSize: 10), seed: 0)
        #expect(partition.counts.min()! >= 10)
        #expect(partition.clientIndices.flatMap { $0 }.sorted() == Array(0..<60_000))
    }
}
