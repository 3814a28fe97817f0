import FedTensor
import Testing

@testable import FedCompress

private func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-12) -> Bool { abs(a - b) <= tolerance }

@Suite struct RatioPolicyTests {
    @Test func fixedRatioIsTheSameForEveryClientAndRound() throws {
        let links = [ClientLink(bandwidth: 1e6), ClientLink(bandwidth: 1e9, latency: 0.5)]
        #expect(try FixedRatio(0.05).ratios(round: 7, links: links, elements: 10) == [0.05, 0.05])
        #expect(throws: CodecError.self) { try FixedRatio(0).ratios(round: 1, links: links, elements: 10) }
        #expect(throws: CodecError.self) { try FixedRatio(0.1).ratios(round: 0, links: links, elements: 10) }
    }

    @Test func dgcWarmupFollowsTheGeometricScheduleThenStaysAtTheFinalRatio() throws {
        // r = 4⁻⁴, W = 4: r^(t/4) = 4^(−t), DGC's 25 %, 6.25 %, 1.5625 %, 0.390625 %.
        let policy = DGCWarmup(final: 1.0 / 256, warmupRounds: 4)
        let expected = [0.25, 0.0625, 0.015625, 0.003_906_25, 0.003_906_25]
        for (t, want) in zip(1...5, expected) {
            let got = try policy.ratio(round: t)
            #expect(abs(got - want) <= 1e-15 * want, "round \(t): \(got)")
        }
        #expect(try policy.ratio(round: 100) == 1.0 / 256)
        let links = [ClientLink(bandwidth: 1), ClientLink(bandwidth: 2), ClientLink(bandwidth: 3)]
        #expect(try policy.ratios(round: 4, links: links, elements: 1) == [1.0 / 256, 1.0 / 256, 1.0 / 256])
        // 0.001 over W = 3: 0.1, 0.01, 0.001.
        let three = DGCWarmup(final: 0.001, warmupRounds: 3)
        #expect(close(try three.ratio(round: 1), 0.1, 1e-15))
        #expect(close(try three.ratio(round: 2), 0.01, 1e-16))
        #expect(try three.ratio(round: 3) == 0.001)
        #expect(try DGCWarmup(final: 0.2, warmupRounds: 1).ratio(round: 1) == 0.2)
        #expect(throws: CodecError.self) { try policy.ratio(round: 0) }
        #expect(throws: CodecError.self) { try DGCWarmup(final: 0.1, warmupRounds: 0).ratio(round: 1) }
        #expect(throws: CodecError.self) { try DGCWarmup(final: 1.5, warmupRounds: 2).ratio(round: 1) }
    }

    @Test func bcrsEqualisesUploadTimesAtTheSlowestClientsTime() throws {
        // S = 10⁶ elements, c = 64 bits, r₀ = 0.01: 640 000 bits at the base ratio.
        let links = [
            ClientLink(bandwidth: 1e6, latency: 0.1),  // 0.74 s at r₀
            ClientLink(bandwidth: 1e7, latency: 0.05),  // 0.114 s
            ClientLink(bandwidth: 2e6, latency: 0.5),  // 0.82 s: the slowest, T = 0.82
            ClientLink(bandwidth: 1e9, latency: 0.01),  // would take r = 12.65625: clamped to 0.5
        ]
        let policy = BCRS(baseRatio: 0.01, minimumRatio: 0.001, maximumRatio: 0.5, bitsPerKeptElement: 64)
        let s = 1_000_000
        let t = policy.deadline(links: links, elements: s)
        #expect(close(t, 0.82))
        let r = try policy.ratios(round: 1, links: links, elements: s)
        // (T − Lᵢ)·Bᵢ / (S·c) by hand.
        #expect(close(r[0], 0.72 * 1e6 / 64e6))
        #expect(close(r[1], 0.77 * 1e7 / 64e6))
        #expect(r[2] == 0.01)
        #expect(r[3] == 0.5)
        for i in 0..<3 {
            #expect(abs(policy.uploadTime(links[i], ratio: r[i], elements: s) - t) <= 1e-9, "client \(i)")
        }
        #expect(policy.uploadTime(links[3], ratio: r[3], elements: s) < t)
        for x in r { #expect(x >= 0.001 && x <= 0.5) }
        #expect(try policy.ratios(round: 1, links: [], elements: s) == [])
        #expect(try policy.ratios(round: 1, links: links, elements: 0) == [0.01, 0.01, 0.01, 0.01])
        #expect(throws: CodecError.self) {
            try BCRS(baseRatio: 0.6, maximumRatio: 0.5).ratios(round: 1, links: links, elements: s)
        }
        #expect(throws: CodecError.self) {
            try policy.ratios(round: 1, links: [ClientLink(bandwidth: 0)], elements: s)
        }
        #expect(throws: CodecError.self) {
            try policy.ratios(round: 1, links: [ClientLink(bandwidth: 1, latency: -1)], elements: s)
        }
    }

    @Test func bcrsWithRandomLinksKeepsUnclampedClientsOnTheDeadline() throws {
        var rng = SeededRNG(seed: 4)
        let links = (0..<50).map { _ in
            ClientLink(bandwidth: Double(rng.nextUniform(1e5, 1e8)), latency: Double(rng.nextUniform(0, 0.3)))
        }
        let policy = BCRS(baseRatio: 0.02, minimumRatio: 0.01, maximumRatio: 0.2)
        let s = 250_000
        let t = policy.deadline(links: links, elements: s)
        let r = try policy.ratios(round: 3, links: links, elements: s)
        var unclamped = 0
        for (link, ri) in zip(links, r) {
            #expect(ri >= 0.02 - 1e-12 && ri <= 0.2)
            if ri < 0.2 {
                unclamped += 1
                #expect(abs(policy.uploadTime(link, ratio: ri, elements: s) - t) <= 1e-9)
            } else {
                #expect(policy.uploadTime(link, ratio: ri, elements: s) <= t + 1e-9)
            }
        }
        #expect(unclamped >= 1)
        #expect(r.contains(0.02))
    }

    @Test func adaTopKCompressesOnlyLinksSlowerThanTheTarget() throws {
        // S = 10⁶ fp32 elements = 3.2·10⁷ bits, τ = 1 s.
        let policy = AdaTopK(targetTime: 1, minimumRatio: 0.05, maximumRatio: 1, bitsPerElement: 32)
        let links = [
            ClientLink(bandwidth: 1e8, latency: 0.1),  // t = 0.42 s ≤ τ: r_max
            ClientLink(bandwidth: 1e7, latency: 0.2),  // t = 3.4 s: 1/3.4
            ClientLink(bandwidth: 4e6),  // t = 8 s: 0.125
            ClientLink(bandwidth: 1e6),  // t = 32 s: 1/32 < r_min: 0.05
            ClientLink(bandwidth: 3.2e7),  // t = 1 s = τ: r_max
        ]
        let r = try policy.ratios(round: 1, links: links, elements: 1_000_000)
        #expect(r[0] == 1)
        #expect(close(r[1], 1 / 3.4))
        #expect(r[2] == 0.125)
        #expect(r[3] == 0.05)
        #expect(r[4] == 1)
        #expect(try AdaTopK(targetTime: 2, maximumRatio: 0.5).ratio(denseUploadTime: 1) == 0.5)
        #expect(try AdaTopK(targetTime: 2, maximumRatio: 0.5).ratio(denseUploadTime: 8) == 0.25)
        #expect(throws: CodecError.self) { try AdaTopK(targetTime: 0).ratio(denseUploadTime: 1) }
        #expect(throws: CodecError.self) { try AdaTopK(targetTime: 1, minimumRatio: 0).ratio(denseUploadTime: 1) }
    }
}
