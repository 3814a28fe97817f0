import FedTensor

/// Selection of the largest magnitudes without a full sort, used by `TopKCodec`.
///
/// Elements are ranked by `|x|` descending, then index ascending; each element gets the unique
/// key `(|x| bits) << 32 | ~index`, so "larger key" is exactly "earlier in that order" and the
/// top k are the k largest keys.
enum TopKSelection {
    @inline(__always)
    static func magnitudeBits(_ v: Float) -> UInt32 { v.bitPattern & 0x7FFF_FFFF }

    /// Indices (ascending) of the first `k` elements in the order |x| descending, index
    /// ascending. O(n) expected: a threshold from a random sample discards most elements in one
    /// pass, then introselect on the survivors finds the exact k-th key. The sample only speeds
    /// things up; the result does not depend on it.
    static func exact(_ x: UnsafeBufferPointer<Float>, k: Int, rng: inout SeededRNG) -> [UInt32] {
        let n = x.count
        guard k > 0 else { return [] }
        guard k < n else { return (0..<n).map { UInt32($0) } }
        var threshold: UInt32 = 0
        if n >= 1 << 16 {
            let s = 1 << 14
            let expected = Double(k) / Double(n) * Double(s)
            let rank = Int(expected + 4 * expected.squareRoot() + 8)
            if rank < s {
                let sample = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: s)
                defer { sample.deallocate() }
                for j in 0..<s { sample[j] = UInt64(magnitudeBits(x[rng.nextInt(below: n)])) }
                threshold = UInt32(kthLargest(sample, rank))
            }
        }
        let candidates = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: n)
        defer { candidates.deallocate() }
        var c = collect(x, above: threshold, into: candidates)
        if c < k { c = collect(x, above: 0, into: candidates) }
        let scratch = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: c)
        defer { scratch.deallocate() }
        _ = scratch.initialize(from: UnsafeBufferPointer(rebasing: candidates[0..<c]))
        let cut = kthLargest(scratch, k)
        var out = [UInt32]()
        out.reserveCapacity(k)
        for j in 0..<c where candidates[j] >= cut {
            out.append(~UInt32(truncatingIfNeeded: candidates[j]))
        }
        return out
    }

    /// Keys of the elements with magnitude bits `≥ threshold`, in index order; returns how many.
    private static func collect(
        _ x: UnsafeBufferPointer<Float>, above threshold: UInt32,
        into keys: UnsafeMutableBufferPointer<UInt64>
    ) -> Int {
        var c = 0
        // Branch-free: always store, advance only for survivors.
        for i in 0..<x.count {
            let b = magnitudeBits(x[i])
            keys[c] = UInt64(b) << 32 | UInt64(~UInt32(truncatingIfNeeded: i))
            c &+= b >= threshold ? 1 : 0
        }
        return c
    }

    /// Approximate top-k after Deep Gradient Compression (Lin et al., 2018): a threshold is read
    /// off a seeded random sample of ~1 % of |x| at the target rank, the elements above it are
    /// counted, and the sample rank is rescaled (up to 4 times) until the count lies in
    /// `k…⌊1.25k⌋`; otherwise the exact selection is used.
    ///
    /// Guarantee: `k ≤ kept ≤ max(k, ⌊1.25k⌋)` and every kept magnitude is ≥ every dropped one
    /// (the kept set is `{i : |xᵢ| ≥ t}` for some `t`, or the exact top k).
    static func approximate(_ x: UnsafeBufferPointer<Float>, k: Int, rng: inout SeededRNG) -> [UInt32] {
        let n = x.count
        guard k > 0 else { return [] }
        guard k < n else { return (0..<n).map { UInt32($0) } }
        let limit = k + k / 4
        let s = min(n, max(256, n / 100))
        let sample = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: s)
        defer { sample.deallocate() }
        for j in 0..<s { sample[j] = UInt64(magnitudeBits(x[rng.nextInt(below: n)])) }
        var rank = max(1, min(s, Int((Double(k) / Double(n) * Double(s)).rounded())))
        for _ in 0..<5 {
            let t = UInt32(kthLargest(sample, rank))
            var count = 0
            for i in 0..<x.count { count &+= magnitudeBits(x[i]) >= t ? 1 : 0 }
            if count >= k && count <= limit {
                var out = [UInt32]()
                out.reserveCapacity(count)
                for i in 0..<x.count where magnitudeBits(x[i]) >= t { out.append(UInt32(i)) }
                return out
            }
            // Aim for the middle of the window: 1.125k.
            let scaled = Double(rank) * 1.125 * Double(k) / Double(max(count, 1))
            var next = max(1, min(s, Int(scaled.rounded())))
            if next == rank { next = count < k ? min(s, rank + 1) : max(1, rank - 1) }
            if next == rank { break }
            rank = next
        }
        return exact(x, k: k, rng: &rng)
    }

    /// The `k`-th largest key (1-based) of `keys`, which is permuted. Introselect: median-of-three
    /// quickselect that sorts the remaining range once it has recursed too deep (O(n log n) worst).
    static func kthLargest(_ keys: UnsafeMutableBufferPointer<UInt64>, _ k: Int) -> UInt64 {
        precondition(k >= 1 && k <= keys.count)
        let target = k - 1
        var lo = 0
        var hi = keys.count - 1
        var budget = 2 * (Int.bitWidth - keys.count.leadingZeroBitCount) + 4
        while lo < hi {
            if budget == 0 {
                var range = UnsafeMutableBufferPointer(rebasing: keys[lo...hi])
                range.sort(by: >)
                return keys[target]
            }
            budget -= 1
            let mid = lo + (hi - lo) / 2
            let a = keys[lo]
            let b = keys[mid]
            let c = keys[hi]
            let pivot = max(min(a, b), min(max(a, b), c))
            var i = lo
            var j = hi
            while i <= j {
                while keys[i] > pivot { i += 1 }
                while keys[j] < pivot { j -= 1 }
                if i <= j {
                    keys.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if target <= j {
                hi = j
            } else if target >= i {
                lo = i
            } else {
                return pivot
            }
        }
        return keys[lo]
    }
}
