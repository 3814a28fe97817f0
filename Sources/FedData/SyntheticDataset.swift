import FedTensor

/// Seeded, easily learnable stand-in data for tests and smoke runs.
///
/// Each class has a fixed random prototype image (standard normal pixels); a sample is its
/// class's prototype plus Gaussian noise. Classes are balanced and appear in a seeded random order.
/// ```swift
/// let data = SyntheticDataset.make(count: 256, classes: 4, channels: 1, height: 8, width: 8,
///                                  seed: 7, noise: 0.5)
/// ```
public enum SyntheticDataset {
    /// A dataset of `count` images shaped `[channels, height, width]` in `classes` classes.
    ///
    /// - Parameters:
    ///   - seed: Same seed, same dataset, bit for bit.
    ///   - noise: Standard deviation of the per-pixel noise; prototypes have unit variance, so
    ///     values well below 1 make the classes easy to separate.
    public static func make(
        count: Int, classes: Int, channels: Int = 1, height: Int, width: Int, seed: UInt64, noise: Float = 0.5
    ) -> LabeledDataset {
        precondition(count >= 0 && classes > 0, "need count >= 0 and classes > 0; found \(count), \(classes)")
        precondition(channels > 0 && height > 0 && width > 0, "image dimensions must be positive")
        let size = channels * height * width

        var prototypeRNG = SeededRNG(seed: seed, stream: "synthetic/prototypes")
        var prototypes = [Float](repeating: 0, count: classes * size)
        for i in prototypes.indices {
            prototypes[i] = prototypeRNG.nextNormal()
        }

        var labels = (0..<count).map { Int32($0 % classes) }
        var labelRNG = SeededRNG(seed: seed, stream: "synthetic/labels")
        labelRNG.shuffle(&labels)

        var noiseRNG = SeededRNG(seed: seed, stream: "synthetic/noise")
        var images = Tensor(uninitializedShape: [count, channels, height, width])
        images.withUnsafeMutableBufferPointer { pixels in
            prototypes.withUnsafeBufferPointer { prototypes in
                for sample in 0..<count {
                    let prototype = prototypes.baseAddress! + Int(labels[sample]) * size
                    let out = pixels.baseAddress! + sample * size
                    for j in 0..<size {
                        out[j] = prototype[j] + noise * noiseRNG.nextNormal()
                    }
                }
            }
        }
        return LabeledDataset(unchecked: images, labels: labels, classCount: classes)
    }
}
