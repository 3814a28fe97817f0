/// The samples each federated client holds: for every client, indices into the full dataset.
///
/// ```swift
/// let partition = try Partitioner.split(labels: train.labels, classes: 10, clients: 100, scheme: .iid, seed: 0)
/// let client7 = train.subset(indices: partition.clientIndices[7])
/// print(partition.summary(labels: train.labels, classes: 10))
/// ```
public struct Partition: Sendable {
    /// For each client, the dataset indices it holds, sorted ascending.
    public let clientIndices: [[Int]]

    /// A partition with the given per-client indices (kept as given).
    public init(clientIndices: [[Int]]) {
        self.clientIndices = clientIndices
    }

    /// Number of clients.
    public var clientCount: Int { clientIndices.count }

    /// Number of samples each client holds.
    public var counts: [Int] { clientIndices.map(\.count) }

    /// Samples per client and class: `result[client][label]`.
    ///
    /// - Precondition: every index is valid for `labels` and every label is in `0..<classes`.
    public func classCounts(labels: [Int32], classes: Int) -> [[Int]] {
        labels.withUnsafeBufferPointer { labels in
            clientIndices.map { indices in
                var row = [Int](repeating: 0, count: classes)
                row.withUnsafeMutableBufferPointer { row in
                    for index in indices {
                        row[Int(labels[index])] += 1
                    }
                }
                return row
            }
        }
    }

    /// A human-readable report: client count, min / median / max client size, and a table of
    /// class counts by client (the first `maxRows` clients; the rest are counted as hidden).
    public func summary(labels: [Int32], classes: Int, maxRows: Int = 20) -> String {
        let sizes = counts
        let total = sizes.reduce(0, +)
        var lines = ["\(clientCount) clients, \(total) samples, \(classes) classes"]
        if !sizes.isEmpty {
            let sorted = sizes.sorted()
            let n = sorted.count
            let median2 = sorted[(n - 1) / 2] + sorted[n / 2]
            let median = median2 % 2 == 0 ? "\(median2 / 2)" : "\(median2 / 2).5"
            lines.append("client size: min \(sorted[0]), median \(median), max \(sorted[n - 1])")
        }
        let table = classCounts(labels: labels, classes: classes)
        let width = max(5, String(sizes.max() ?? 0).count + 1)
        func cell(_ text: String) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        let clientWidth = max(6, String(clientCount - 1).count)
        func clientCell(_ text: String) -> String {
            String(repeating: " ", count: max(0, clientWidth - text.count)) + text
        }
        lines.append(clientCell("client") + cell("size") + (0..<classes).map { cell("c\($0)") }.joined())
        for client in 0..<min(maxRows, clientCount) {
            lines.append(
                clientCell(String(client)) + cell(String(sizes[client]))
                    + table[client].map { cell(String($0)) }.joined())
        }
        if clientCount > maxRows {
            let hidden = clientCount - maxRows
            lines.append("… \(hidden) more client\(hidden == 1 ? "" : "s") hidden")
        }
        return lines.joined(separator: "\n")
    }
}
