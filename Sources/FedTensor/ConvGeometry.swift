/// Geometry of a 2-D convolution or pooling window over one `C×H×W` sample, and the
/// im2col / col2im transforms that turn a convolution into one matrix product.
///
/// The column matrix has `channels·kernelH·kernelW` rows, ordered `(c, ki, kj)` like PyTorch's
/// `[out, in, kh, kw]` weight, and one column per output pixel. Several samples can share one
/// column matrix: sample `n` writes columns `n·outPixels ..< (n+1)·outPixels` of a matrix with
/// leading dimension `ldcol`, so a whole mini-batch becomes a single GEMM.
public struct ConvGeometry: Hashable, Sendable {
    public let channels, height, width: Int
    public let kernelH, kernelW: Int
    public let strideH, strideW: Int
    public let padH, padW: Int
    public let outHeight, outWidth: Int

    public init(
        channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
        strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0
    ) {
        precondition(kernelH > 0 && kernelW > 0 && strideH > 0 && strideW > 0 && padH >= 0 && padW >= 0)
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.strideH = strideH
        self.strideW = strideW
        self.padH = padH
        self.padW = padW
        self.outHeight = (height + 2 * padH - kernelH) / strideH + 1
        self.outWidth = (width + 2 * padW - kernelW) / strideW + 1
    }

    /// Whether the window fits at least once.
    public var isValid: Bool { height + 2 * padH >= kernelH && width + 2 * padW >= kernelW }

    /// Rows of the column matrix: `channels · kernelH · kernelW`.
    @inlinable public var columnRows: Int { channels * kernelH * kernelW }
    /// Output pixels per channel: `outHeight · outWidth`.
    @inlinable public var outPixels: Int { outHeight * outWidth }

    /// Output columns `[owStart, owEnd)` whose input column `ow·strideW − padW + kj` is inside the image.
    @inlinable
    func validColumns(kj: Int) -> (Int, Int) {
        // iw = ow*s - p + kj >= 0  <=>  ow >= ceil((p - kj) / s)
        let lo = padW - kj
        let start = lo <= 0 ? 0 : (lo + strideW - 1) / strideW
        // iw <= W - 1  <=>  ow <= floor((W - 1 + p - kj) / s)
        let hi = width - 1 + padW - kj
        let end = hi < 0 ? 0 : min(outWidth, hi / strideW + 1)
        return (min(start, end), end)
    }

    /// Writes the column matrix of one sample (`input`: `C×H×W`) into `col` with row stride `ldcol`.
    @inlinable
    public func im2col(input: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>, ldcol: Int) {
        let ow = outWidth
        for c in 0..<channels {
            let plane = input + c * height * width
            for ki in 0..<kernelH {
                for kj in 0..<kernelW {
                    let row = col + ((c * kernelH + ki) * kernelW + kj) * ldcol
                    let (start, end) = validColumns(kj: kj)
                    for oh in 0..<outHeight {
                        let dst = row + oh * ow
                        let ih = oh * strideH - padH + ki
                        if ih < 0 || ih >= height || start >= end {
                            for x in 0..<ow { dst[x] = 0 }
                            continue
                        }
                        for x in 0..<start { dst[x] = 0 }
                        let src = plane + ih * width - padW + kj
                        if strideW == 1 {
                            VectorKernels.copy(src + start, dst + start, end - start)
                        } else {
                            for x in start..<end { dst[x] = src[x * strideW] }
                        }
                        for x in end..<ow { dst[x] = 0 }
                    }
                }
            }
        }
    }

    /// Adds the column-matrix gradient `col` (row stride `ldcol`) back onto one sample's input
    /// gradient `inputGrad` (`C×H×W`). The caller zeroes `inputGrad` first.
    @inlinable
    public func col2im(col: UnsafePointer<Float>, ldcol: Int, inputGrad: UnsafeMutablePointer<Float>) {
        let ow = outWidth
        for c in 0..<channels {
            let plane = inputGrad + c * height * width
            for ki in 0..<kernelH {
                for kj in 0..<kernelW {
                    let row = col + ((c * kernelH + ki) * kernelW + kj) * ldcol
                    let (start, end) = validColumns(kj: kj)
                    if start >= end { continue }
                    for oh in 0..<outHeight {
                        let ih = oh * strideH - padH + ki
                        if ih < 0 || ih >= height { continue }
                        let src = row + oh * ow
                        let dst = plane + ih * width - padW + kj
                        if strideW == 1 {
                            VectorKernels.add(src + start, dst + start, end - start)
                        } else {
                            for x in start..<end { dst[x * strideW] += src[x] }
                        }
                    }
                }
            }
        }
    }

    /// Floats of scratch that `im2colPadded` and `col2imPadded` need: one zero-padded sample.
    @inlinable public var paddedSize: Int { channels * (height + 2 * padH) * (width + 2 * padW) }

    /// `im2col` for stride 1 through a zero-padded copy of the sample in `scratch`
    /// (`paddedSize` floats), so every row segment is a plain copy of `outWidth` floats.
    @inlinable
    public func im2colPadded(
        input: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, col: UnsafeMutablePointer<Float>, ldcol: Int
    ) {
        guard strideH == 1 && strideW == 1 else { return im2col(input: input, col: col, ldcol: ldcol) }
        let pw = width + 2 * padW
        let ph = height + 2 * padH
        if padH > 0 || padW > 0 {
            scratch.update(repeating: 0, count: paddedSize)
            for c in 0..<channels {
                for y in 0..<height {
                    VectorKernels.copy(
                        input + (c * height + y) * width, scratch + (c * ph + y + padH) * pw + padW, width)
                }
            }
        }
        let src = padH > 0 || padW > 0 ? UnsafePointer(scratch) : input
        let ow = outWidth
        for c in 0..<channels {
            let plane = src + c * ph * pw
            for ki in 0..<kernelH {
                for kj in 0..<kernelW {
                    let row = col + ((c * kernelH + ki) * kernelW + kj) * ldcol
                    for oh in 0..<outHeight {
                        VectorKernels.copy(plane + (oh + ki) * pw + kj, row + oh * ow, ow)
                    }
                }
            }
        }
    }

    /// `col2im` for stride 1, accumulating into the zero-padded `scratch` (`paddedSize` floats)
    /// and then writing its interior to `inputGrad` (overwritten, not added to).
    @inlinable
    public func col2imPadded(
        col: UnsafePointer<Float>, ldcol: Int, scratch: UnsafeMutablePointer<Float>,
        inputGrad: UnsafeMutablePointer<Float>
    ) {
        guard strideH == 1 && strideW == 1 else {
            inputGrad.update(repeating: 0, count: channels * height * width)
            return col2im(col: col, ldcol: ldcol, inputGrad: inputGrad)
        }
        let pw = width + 2 * padW
        let ph = height + 2 * padH
        scratch.update(repeating: 0, count: paddedSize)
        let ow = outWidth
        for c in 0..<channels {
            let plane = scratch + c * ph * pw
            for ki in 0..<kernelH {
                for kj in 0..<kernelW {
                    let row = col + ((c * kernelH + ki) * kernelW + kj) * ldcol
                    for oh in 0..<outHeight {
                        VectorKernels.add(row + oh * ow, plane + (oh + ki) * pw + kj, ow)
                    }
                }
            }
        }
        for c in 0..<channels {
            for y in 0..<height {
                VectorKernels.copy(
                    scratch + (c * ph + y + padH) * pw + padW, inputGrad + (c * height + y) * width, width)
            }
        }
    }
}
