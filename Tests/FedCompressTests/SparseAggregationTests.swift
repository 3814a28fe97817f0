import Testing

@testable import FedCompress

@Suite struct SparseAggregationTests {
    /// Three clients, n = 5, overlapping index sets, weights 1, 3, 4 (Σ = 8); nobody sends j = 4.
    private let updates: [(update: DecodedUpdate, weight: Double)] = [
        (.sparse(count: 5, indices: [0, 1, 3], values: [2, 4, -1]), 1),
        (.sparse(count: 5, indices: [1, 2, 3], values: [8, 6, 3]), 3),
        (.sparse(count: 5, indices: [0, 3], values: [1, 0.5]), 4),
    ]

    @Test func overlapWeightedAverageRenormalisesPerCoordinate() throws {
        let out = try SparseAggregation.overlapWeightedAverage(updates, count: 5)
        // j=0: S = {A, C}:    (1·2 + 4·1) / (1 + 4)          = 6 / 5  = 1.2
        // j=1: S = {A, B}:    (1·4 + 3·8) / (1 + 3)          = 28 / 4 = 7
        // j=2: S = {B}:       (3·6) / 3                      = 6   (B's own value)
        // j=3: S = {A, B, C}: (1·−1 + 3·3 + 4·0.5) / 8       = 10 / 8 = 1.25
        // j=4: S = ∅                                         = 0
        #expect(out == [Float(6.0 / 5.0), 7, 6, 1.25, 0])
    }

    @Test func weightedAverageCountsMissingCoordinatesAsZero() throws {
        let out = try SparseAggregation.weightedAverage(updates, count: 5)
        // Same numerators over Σ w = 8: 6/8, 28/8, 18/8, 10/8, 0.
        #expect(out == [0.75, 3.5, 2.25, 1.25, 0])
    }

    @Test func aCoordinateSentByOneClientKeepsItsValueOnlyUnderOPWA() throws {
        let single: [(update: DecodedUpdate, weight: Double)] = [
            (.sparse(count: 3, indices: [2], values: [9]), 1),
            (.sparse(count: 3, indices: [0], values: [1]), 2),
            (.sparse(count: 3, indices: [0], values: [4]), 3),
        ]
        let opwa = try SparseAggregation.overlapWeightedAverage(single, count: 3)
        let plain = try SparseAggregation.weightedAverage(single, count: 3)
        #expect(opwa[2] == 9)
        #expect(plain[2] == 1.5)  // 1·9 / 6
        #expect(opwa[0] == Float(14.0 / 5.0))  // (2·1 + 3·4) / 5
        #expect(plain[0] == Float(14.0 / 6.0))
        #expect(opwa[1] == 0 && plain[1] == 0)
    }

    @Test func denseUpdatesContainEveryCoordinate() throws {
        let mixed: [(update: DecodedUpdate, weight: Double)] = [
            (.sparse(count: 3, indices: [1], values: [4]), 1),
            (.dense([1, 2, 3]), 3),
        ]
        // OPWA: j=0: 3·1/3 = 1; j=1: (1·4 + 3·2)/4 = 2.5; j=2: 3·3/3 = 3.
        #expect(try SparseAggregation.overlapWeightedAverage(mixed, count: 3) == [1, 2.5, 3])
        // Plain: 3/4, 10/4, 9/4.
        #expect(try SparseAggregation.weightedAverage(mixed, count: 3) == [0.75, 2.5, 2.25])
        // All dense: both rules agree.
        let dense: [(update: DecodedUpdate, weight: Double)] = [(.dense([1, 2]), 1), (.dense([3, 6]), 3)]
        #expect(try SparseAggregation.overlapWeightedAverage(dense, count: 2) == [2.5, 5])
        #expect(try SparseAggregation.weightedAverage(dense, count: 2) == [2.5, 5])
    }

    @Test func overlapScalesTurnThePlainMeanIntoOPWA() throws {
        let kept: [[UInt32]?] = updates.map { u in
            if case .sparse(_, let idx, _) = u.update { idx } else { nil }
        }
        let scales = try SparseAggregation.overlapScales(kept: kept, weights: updates.map(\.weight), count: 5)
        // W = 8; W_j = 5, 4, 3, 8, 0.
        #expect(scales == [Float(8.0 / 5.0), 2, Float(8.0 / 3.0), 1, 0])
        let rescaled = updates.map { u -> (update: DecodedUpdate, weight: Double) in
            guard case .sparse(let n, let idx, let vals) = u.update else { return u }
            return (.sparse(count: n, indices: idx, values: zip(idx, vals).map { $1 * scales[Int($0)] }), u.weight)
        }
        let viaScales = try SparseAggregation.weightedAverage(rescaled, count: 5)
        let opwa = try SparseAggregation.overlapWeightedAverage(updates, count: 5)
        for j in 0..<5 { #expect(abs(viaScales[j] - opwa[j]) <= 1e-6 * max(1, abs(opwa[j]))) }
        // A dense update covers every coordinate.
        #expect(
            try SparseAggregation.overlapScales(kept: [[1], nil], weights: [1, 3], count: 3) == [
                Float(4.0 / 3.0), 1, Float(4.0 / 3.0),
            ])
        #expect(throws: CodecError.self) { try SparseAggregation.overlapScales(kept: [[3]], weights: [1], count: 3) }
        #expect(throws: CodecError.self) { try SparseAggregation.overlapScales(kept: [nil], weights: [0], count: 3) }
        #expect(throws: CodecError.self) {
            try SparseAggregation.overlapScales(kept: [nil, nil], weights: [1], count: 3)
        }
    }

    @Test func invalidInputThrows() {
        let cases: [([(update: DecodedUpdate, weight: Double)], Int, CodecError.Code)] = [
            ([], 3, .invalidParameter),
            ([(.dense([1, 2]), 1)], 3, .countMismatch),
            ([(.sparse(count: 4, indices: [0], values: [1]), 1)], 3, .countMismatch),
            ([(.dense([1, .nan, 3]), 1)], 3, .nonFinite),
            ([(.sparse(count: 3, indices: [1], values: [.infinity]), 1)], 3, .nonFinite),
            ([(.dense([1, 2, 3]), 0)], 3, .invalidParameter),
            ([(.dense([1, 2, 3]), -2)], 3, .invalidParameter),
            ([(.dense([1, 2, 3]), .infinity)], 3, .invalidParameter),
            ([(.dense([1, 2, 3]), .nan)], 3, .invalidParameter),
            ([(.sparse(count: 3, indices: [3], values: [1]), 1)], 3, .indexOutOfRange),
            ([(.sparse(count: 3, indices: [1, 1], values: [1, 2]), 1)], 3, .indexOutOfRange),
            ([(.sparse(count: 3, indices: [2, 0], values: [1, 2]), 1)], 3, .indexOutOfRange),
            ([(.sparse(count: 3, indices: [0, 1], values: [1]), 1)], 3, .countMismatch),
        ]
        for (number, (updates, n, code)) in cases.enumerated() {
            let plain = #expect(throws: CodecError.self, "case \(number)") {
                try SparseAggregation.weightedAverage(updates, count: n)
            }
            #expect(plain?.code == code, "case \(number)")
            let opwa = #expect(throws: CodecError.self, "case \(number)") {
                try SparseAggregation.overlapWeightedAverage(updates, count: n)
            }
            #expect(opwa?.code == code, "case \(number)")
        }
    }
}
