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
                            dst.update(repeating: 0, count: ow)
                            continue
                        }
                        if start > 0 { dst.update(repeating: 0, count: start) }
                        let src = plane + ih * width - padW + kj
                        if strideW == 1 {
                            (dst + start).update(from: src + start, count: end - start)
                        } else {
                            for x in start..<end { dst[x] = src[x * strideW] }
                        }
                        if end < ow { (dst + end).update(repeating: 0, count: ow - end) }
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
                            for x in start..<end { dst[x] += src[x] }
                        } else {
                            for x in start..<end { dst[x * strideW] += src[x] }
                        }
                    }
                }
            }
        }
    }
}
