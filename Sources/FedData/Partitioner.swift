import FedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Divides a labelled dataset among federated clients according to a ``PartitionScheme``.
///
/// A partition is a pure function of the labels, the scheme with its parameters, the client
/// count and the seed; the random stream is `SeededRNG(seed: seed, stream: "partition/<scheme name>")`.
/// ```swift
/// let partition = try Partitioner.split(
///     labels: train.labels, classes: 10, clients: 100, scheme: .dirichlet(alpha: 0.5), seed: 0)
/// let firstClient = train.subset(indices: partition.clientIndices[0])
/// ```
public enum Partitioner {
    /// How many Dirichlet draws are tried before giving up on the minimum client size.
    public static let maxDirichletAttempts = 1000

    /// Splits the samples with `labels` among `clients` clients; every index lands in exactly one
    /// client, and each client's indices are sorted ascending.
    ///
    /// - Parameters:
    ///   - labels: One label per sample, each in `0..<classes`.
    ///   - classes: Number of classes, at least 1.
    ///   - clients: Number of clients, in `1...labels.count`.
    ///   - scheme: How to split; see ``PartitionScheme``.
    ///   - seed: Root seed.
    /// - Throws: ``DataError`` `invalidArgument` naming the parameter, its value and the allowed
    ///   range when an argument is out of range, or when no Dirichlet draw within
    ///   ``maxDirichletAttempts`` gives every client `minSize` samples; `labelOutOfRange` for a
    ///   label outside `0..<classes`.
    public static func split(
        labels: [Int32], classes: Int, clients: Int, scheme: PartitionScheme, seed: UInt64
    ) throws -> Partition {
        let n = labels.count
        try validate(labels: labels, classes: classes, clients: clients, scheme: scheme)
        var rng = SeededRNG(seed: seed, stream: "partition/\(scheme.name)")
        let owner: [Int]
        switch scheme {
        case .iid:
            owner = iidOwners(count: n, clients: clients, rng: &rng)
        case .dirichlet(let alpha, let minSize):
            owner = try dirichletOwners(
                labels: labels, classes: classes, clients: clients, alpha: alpha, minSize: minSize, rng: &rng)
        case .shards(let perClient):
            owner = shardOwners(labels: labels, classes: classes, clients: clients, perClient: perClient, rng: &rng)
        case .quantitySkew(let sigma):
            owner = quantitySkewOwners(count: n, clients: clients, sigma: sigma, rng: &rng)
        }
        return Partition(clientIndices: group(owner: owner, clients: clients))
    }

    // MARK: - Validation

    private static func validate(labels: [Int32], classes: Int, clients: Int, scheme: PartitionScheme) throws {
        let n = labels.count
        guard classes >= 1 else {
            throw invalid("classes must be at least 1; found \(classes)")
        }
        if let i = labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw DataError(
                code: .labelOutOfRange, message: "label \(labels[i]) at index \(i) is outside 0..<\(classes)")
        }
        guard clients >= 1 && clients <= n else {
            throw invalid("clients must be in 1...\(n) (at most the number of samples, \(n)); found \(clients)")
        }
        switch scheme {
        case .iid:
            break
        case .dirichlet(let alpha, let minSize):
            guard alpha > 0 && alpha.isFinite else {
                throw invalid("alpha must be positive and finite (alpha > 0); found \(alpha)")
            }
            let most = n / clients
            guard minSize >= 0 && minSize <= most else {
                throw invalid(
                    "minSize must be in 0...\(most) (samples / clients = \(n) / \(clients)); found \(minSize)")
            }
        case .shards(let perClient):
            guard perClient >= 1 else {
                throw invalid("perClient must be at least 1; found \(perClient)")
            }
            let (shards, overflow) = clients.multipliedReportingOverflow(by: perClient)
            guard !overflow && shards <= n else {
                throw invalid(
                    "perClient must be in 1...\(n / clients) so that clients × perClient (\(clients) × \(perClient)) "
                        + "is at most the number of samples, \(n); found perClient \(perClient)")
            }
        case .quantitySkew(let sigma):
            guard sigma >= 0 && sigma.isFinite else {
                throw invalid("sigma must be finite and non-negative (sigma >= 0); found \(sigma)")
            }
        }
    }

    private static func invalid(_ message: String) -> DataError {
        DataError(code: .invalidArgument, message: message)
    }

    // MARK: - Schemes (each returns the owning client of every sample)

    /// Seeded shuffle, then contiguous pieces whose sizes differ by at most one.
    private static func iidOwners(count n: Int, clients: Int, rng: inout SeededRNG) -> [Int] {
        var order = Array(0..<n)
        rng.shuffle(&order)
        let base = n / clients
        let extra = n % clients
        return assign(order: order, sizes: (0..<clients).map { base + ($0 < extra ? 1 : 0) })
    }

    /// The Flower baseline's `dirichlet_label_split`: per class, shuffle its indices, draw client
    /// shares from Dirichlet(alpha · 1) and cut at `floor(cumsum(p) · n_c)`; redraw until every
    /// client has `minSize` samples.
    private static func dirichletOwners(
        labels: [Int32], classes: Int, clients: Int, alpha: Double, minSize: Int, rng: inout SeededRNG
    ) throws -> [Int] {
        let byClass = indicesByClass(labels: labels, classes: classes).filter { !$0.isEmpty }
        let concentration = [Double](repeating: alpha, count: clients)
        var shuffled = byClass
        var cuts = [[Int]](repeating: [Int](repeating: 0, count: clients + 1), count: byClass.count)
        var sizes = [Int](repeating: 0, count: clients)
        for _ in 0..<maxDirichletAttempts {
            for k in 0..<clients { sizes[k] = 0 }
            for c in byClass.indices {
                shuffled[c] = byClass[c]
                rng.shuffle(&shuffled[c])
                let p = rng.nextDirichlet(alpha: concentration)
                let count = byClass[c].count
                p.withUnsafeBufferPointer { p in
                    sizes.withUnsafeMutableBufferPointer { sizes in
                        cuts[c].withUnsafeMutableBufferPointer { cut in
                            var cumulative = 0.0
                            cut[0] = 0
                            for k in 0..<clients - 1 {
                                cumulative += p[k]
                                cut[k + 1] = min(count, Int(cumulative * Double(count)))
                                sizes[k] += cut[k + 1] - cut[k]
                            }
                            cut[clients] = count
                            sizes[clients - 1] += count - cut[clients - 1]
                        }
                    }
                }
            }
            if sizes.min()! >= minSize {
                var owner = [Int](repeating: 0, count: labels.count)
                owner.withUnsafeMutableBufferPointer { owner in
                    for c in byClass.indices {
                        shuffled[c].withUnsafeBufferPointer { members in
                            cuts[c].withUnsafeBufferPointer { cut in
                                for k in 0..<clients {
                                    for j in cut[k]..<cut[k + 1] { owner[members[j]] = k }
                                }
                            }
                        }
                    }
                }
                return owner
            }
        }
        throw invalid(
            "dirichlet: no draw in \(maxDirichletAttempts) attempts gave every one of \(clients) clients at least "
                + "minSize \(minSize) samples with alpha \(alpha); lower minSize or raise alpha")
    }

    /// FedAvg shards: label-sorted indices cut into `clients · perClient` shards of equal size
    /// (when the sample count is not a multiple, the first shards in label order take one extra
    /// sample each, so every sample is kept), dealt by a seeded permutation.
    private static func shardOwners(
        labels: [Int32], classes: Int, clients: Int, perClient: Int, rng: inout SeededRNG
    ) -> [Int] {
        let n = labels.count
        let sorted = indicesByClass(labels: labels, classes: classes).flatMap { $0 }
        let shardCount = clients * perClient
        var deal = Array(0..<shardCount)
        rng.shuffle(&deal)
        let base = n / shardCount
        let extra = n % shardCount
        var owner = [Int](repeating: 0, count: n)
        owner.withUnsafeMutableBufferPointer { owner in
            sorted.withUnsafeBufferPointer { sorted in
                for (position, shard) in deal.enumerated() {
                    let client = position / perClient
                    let start = shard * base + min(shard, extra)
                    let end = start + base + (shard < extra ? 1 : 0)
                    for j in start..<end { owner[sorted[j]] = client }
                }
            }
        }
        return owner
    }

    /// Client sizes proportional to log-normal(0, sigma) weights on top of one sample each,
    /// rounded by largest remainder; samples dealt in a seeded random order.
    private static func quantitySkewOwners(count n: Int, clients: Int, sigma: Double, rng: inout SeededRNG) -> [Int] {
        // Log-normal(0, sigma) draws exp(sigma · z), each divided by the largest so that a big sigma
        // cannot overflow to infinity; only the proportions matter.
        let z = (0..<clients).map { _ in rng.nextNormalDouble() }
        let top = z.max()!
        let weights = z.map { exp(sigma * ($0 - top)) }
        let total = weights.reduce(0, +)
        let spare = n - clients
        let quotas = weights.map { Double(spare) * $0 / total }
        var sizes = quotas.map { 1 + Int($0.rounded(.down)) }
        var remaining = n - sizes.reduce(0, +)
        // Largest fractional part first; ties go to the lower client index so the result is stable.
        let byFraction = (0..<clients).sorted {
            let a = quotas[$0] - quotas[$0].rounded(.down)
            let b = quotas[$1] - quotas[$1].rounded(.down)
            return a != b ? a > b : $0 < $1
        }
        var i = 0
        while remaining > 0 {
            sizes[byFraction[i % clients]] += 1
            remaining -= 1
            i += 1
        }
        // Rounding error in the quotas could in principle overshoot; take back from the smallest fractions.
        i = clients - 1
        while remaining < 0 {
            let k = byFraction[(i % clients + clients) % clients]
            if sizes[k] > 1 {
                sizes[k] -= 1
                remaining += 1
            }
            i -= 1
        }
        var order = Array(0..<n)
        rng.shuffle(&order)
        return assign(order: order, sizes: sizes)
    }

    // MARK: - Shared steps

    /// The indices of each class in ascending order (a stable counting sort by label).
    private static func indicesByClass(labels: [Int32], classes: Int) -> [[Int]] {
        var counts = [Int](repeating: 0, count: classes)
        for label in labels { counts[Int(label)] += 1 }
        var byClass = counts.map { [Int](repeating: 0, count: $0) }
        var filled = [Int](repeating: 0, count: classes)
        labels.withUnsafeBufferPointer { labels in
            for (i, label) in labels.enumerated() {
                let c = Int(label)
                byClass[c][filled[c]] = i
                filled[c] += 1
            }
        }
        return byClass
    }

    /// Owners for `order` cut into consecutive pieces of `sizes` (which sum to `order.count`).
    private static func assign(order: [Int], sizes: [Int]) -> [Int] {
        var owner = [Int](repeating: 0, count: order.count)
        owner.withUnsafeMutableBufferPointer { owner in
            order.withUnsafeBufferPointer { order in
                var position = 0
                for (client, size) in sizes.enumerated() {
                    for j in position..<position + size { owner[order[j]] = client }
                    position += size
                }
            }
        }
        return owner
    }

    /// Each client's indices in ascending order, in one pass over `owner`.
    private static func group(owner: [Int], clients: Int) -> [[Int]] {
        var sizes = [Int](repeating: 0, count: clients)
        for k in owner { sizes[k] += 1 }
        var result = sizes.map { [Int](repeating: 0, count: $0) }
        var filled = [Int](repeating: 0, count: clients)
        owner.withUnsafeBufferPointer { owner in
            for (i, k) in owner.enumerated() {
                result[k][filled[k]] = i
                filled[k] += 1
            }
        }
        return result
    }
}
