import FedTensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The Fashion-MNIST dataset: 28×28 grayscale images of clothing in 10 classes, 60 000 for
/// training and 10 000 for testing.
///
/// ```swift
/// let (train, test) = try FashionMNIST.load()   // images [N, 1, 28, 28] in [0, 1]
/// ```
public enum FashionMNIST {
    /// Where the Debian package `dataset-fashion-mnist` installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// Environment variable that overrides ``defaultDirectory``.
    public static let directoryEnvironmentVariable = "FEDSWIFT_FMNIST_DIR"

    /// Number of classes.
    public static let classCount = 10

    /// Image height and width.
    public static let imageSide = 28

    /// Class names, indexed by label.
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// The directory `load` reads: `directory` if given, else `$FEDSWIFT_FMNIST_DIR` if set and
    /// non-empty, else ``defaultDirectory``.
    public static func resolveDirectory(_ directory: String? = nil) -> String {
        if let directory { return directory }
        if let value = getenv(directoryEnvironmentVariable), value.pointee != 0 {
            return String(cString: value)
        }
        return defaultDirectory
    }

    /// Loads the training and test sets from `directory` (see ``resolveDirectory(_:)``).
    ///
    /// Reads `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
    /// `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz`; each may also be present
    /// uncompressed, without the `.gz`. Images come out shaped `[N, 1, 28, 28]`.
    ///
    /// - Throws: ``DataError``: `missingFile` (with how to install the files), any IDX error,
    ///   `shapeMismatch`, `countMismatch` or `labelOutOfRange`.
    public static func load(
        directory: String? = nil, normalization: Normalization = .unitRange
    ) throws -> (train: LabeledDataset, test: LabeledDataset) {
        let root = resolveDirectory(directory)
        let train = try loadSplit(
            imagesPath: locate("train-images-idx3-ubyte", in: root),
            labelsPath: locate("train-labels-idx1-ubyte", in: root),
            normalization: normalization)
        let test = try loadSplit(
            imagesPath: locate("t10k-images-idx3-ubyte", in: root),
            labelsPath: locate("t10k-labels-idx1-ubyte", in: root),
            normalization: normalization)
        return (train, test)
    }

    /// The test split alone (what a coordinator evaluates on), as ``load(directory:normalization:)`` reads it.
    public static func loadTest(
        directory: String? = nil, normalization: Normalization = .unitRange
    ) throws -> LabeledDataset {
        let root = resolveDirectory(directory)
        return try loadSplit(
            imagesPath: locate("t10k-images-idx3-ubyte", in: root),
            labelsPath: locate("t10k-labels-idx1-ubyte", in: root),
            normalization: normalization)
    }

    /// Loads one split from an images IDX file (`[N, 28, 28]`) and a labels IDX file (`[N]`),
    /// gzipped or raw.
    ///
    /// - Throws: ``DataError`` as ``load(directory:normalization:)`` does.
    public static func loadSplit(
        imagesPath: String, labelsPath: String, normalization: Normalization = .unitRange
    ) throws -> LabeledDataset {
        let imageFile = try readIDX(imagesPath)
        let labelFile = try readIDX(labelsPath)
        let side = imageSide
        guard imageFile.dims.count == 3 && imageFile.dims[1] == side && imageFile.dims[2] == side else {
            throw DataError(
                code: .shapeMismatch,
                message: "images file '\(imagesPath)' has dimensions \(imageFile.dims); expected [N, \(side), \(side)]",
                path: imagesPath)
        }
        guard labelFile.dims.count == 1 else {
            throw DataError(
                code: .shapeMismatch,
                message: "labels file '\(labelsPath)' has dimensions \(labelFile.dims); expected [N]",
                path: labelsPath)
        }
        let n = imageFile.dims[0]
        guard labelFile.dims[0] == n else {
            throw DataError(
                code: .countMismatch,
                message: "images file '\(imagesPath)' holds \(n) images but labels file '\(labelsPath)' holds "
                    + "\(labelFile.dims[0]) labels; expected the same count",
                path: labelsPath)
        }

        var labels = [Int32](repeating: 0, count: n)
        var badLabel: (index: Int, value: UInt8)?
        labelFile.payload.withUnsafeBufferPointer { source in
            labels.withUnsafeMutableBufferPointer { destination in
                for i in 0..<n {
                    let value = source[i]
                    if value >= classCount && badLabel == nil { badLabel = (i, value) }
                    destination[i] = Int32(value)
                }
            }
        }
        if let badLabel {
            throw DataError(
                code: .labelOutOfRange,
                message: "labels file '\(labelsPath)' has label \(badLabel.value) at index \(badLabel.index); "
                    + "expected labels in 0..<\(classCount)",
                path: labelsPath)
        }

        var images = Tensor(uninitializedShape: [n, 1, side, side])
        imageFile.payload.withUnsafeBufferPointer { source in
            images.withUnsafeMutableBufferPointer { destination in
                normalization.decode(source, into: destination)
            }
        }
        return LabeledDataset(unchecked: images, labels: labels, classCount: classCount)
    }

    /// `name.gz` in `directory`, or `name` if only the uncompressed file exists there.
    private static func locate(_ name: String, in directory: String) -> String {
        let base = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        if !DataFile.exists(path: base + ".gz") && DataFile.exists(path: base) { return base }
        return base + ".gz"
    }

    private static func readIDX(_ path: String) throws -> IDXFile {
        do {
            return try IDXFile(contentsOf: path)
        } catch let error as DataError where error.code == .missingFile {
            throw DataError(
                code: .missingFile,
                message: "Fashion-MNIST file '\(path)' not found. Install the dataset with "
                    + "`apt-get install dataset-fashion-mnist`, or set \(directoryEnvironmentVariable) to a "
                    + "directory holding the four IDX files (gzipped or not)",
                path: path, cause: error)
        }
    }
}
