import CBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

// Convolution as per-image im2col + OpenBLAS sgemm.
//
// Legend: N batch, C/Cin input channels, F/Cout output channels, H x W input, P x Q output,
// R x S kernel, K = Cin*R*S (the GEMM depth of forward and backward-filter).
//
// Scheme (measured in bench/NOTES.md): the batch is split into one contiguous range of images per
// core; each worker unfolds one image at a time into its own column buffer (K, P*Q), which stays
// in L2 (576 KB for ResNet-20's 16->16 at 32x32), and calls a single-threaded sgemm on it.
// Folding the whole batch into the GEMM's N dimension instead needs a 75 MB column buffer and
// runs at DRAM speed. Where OpenBLAS has small-matrix kernels (AVX-512 cores), stride-1
// convolutions use `ShiftedRows` instead of im2col, and im2col is cut into row chunks
// (`ConvolutionTuning`).
//
// - forward:          y_n (F, PQ)  = W (F, K) . col(x_n) (K, PQ)
// - backward-data:    stride 1: the "full" convolution of dy with the flipped, transposed filter,
//                     dx_n (C, HW) = Wflip (C, F*R*S) . col(dy_n) (F*R*S, HW), which keeps the
//                     GEMM depth at F*R*S instead of F and needs no scatter-add;
//                     otherwise col = W^T (K, F) . dy_n (F, PQ), then col2im (scatter-add).
// - backward-filter:  each worker accumulates dW_part^T (K, F) += col(x_n) (K, PQ) . dy_n^T, then
//                     the parts are summed into dw in worker order (deterministic for a given
//                     thread count).
// 1x1 stride-1 unpadded convolutions skip im2col: the image itself is the column matrix.

/// Which implementation runs the CPU convolutions: oneDNN on NHWC copies (default), oneDNN on
/// its own blocked layouts, or the im2col / shifted-rows + OpenBLAS kernels below. Chosen by
/// `STRATA_CPU_CONV=dnnl|dnnl-any|im2col` for the A/B measurement (bench/NOTES.md section 5).
enum CPUConvolutionEngine: Equatable {
    case dnnlNHWC, dnnlAny, im2col

    static var current: CPUConvolutionEngine = {
        switch getenv("STRATA_CPU_CONV").map({ String(cString: $0) }) {
        case "im2col": return .im2col
        case "dnnl-any": return .dnnlAny
        default: return .dnnlNHWC
        }
    }()
}

/// Workspace slots used by the convolution kernels (`+ part` for per-worker buffers).
private enum ConvSlot {
    static let column = 0xC0_00
    static let partialGrad = 0xC1_00
    static let flippedWeight = 0xC2_00
    static let ones = 0xC3_00
    static let transposedGrad = 0xC4_00
    static let wideOutput = 0xC5_00
    static let rowWeights = 0xC6_00
}

/// The geometry of one unfolding: image (channels, height, width) -> columns
/// (channels*kernelH*kernelW, outHeight*outWidth).
struct Unfold {
    var channels, height, width: Int
    var kernelH, kernelW, strideH, strideW, padH, padW: Int
    var outHeight, outWidth: Int

    /// The forward unfolding of the input.
    init(input g: ConvGeometry) {
        channels = g.inChannels; height = g.height; width = g.width
        kernelH = g.kernelH; kernelW = g.kernelW; strideH = g.strideH; strideW = g.strideW
        padH = g.padH; padW = g.padW; outHeight = g.outHeight; outWidth = g.outWidth
    }

    /// The unfolding of dy for backward-data of a stride-1 convolution, as the "full" correlation
    /// with the flipped kernel (padding kernel-1-pad, output H x W).
    init(flippedGradOutput g: ConvGeometry) {
        channels = g.outChannels; height = g.outHeight; width = g.outWidth
        kernelH = g.kernelH; kernelW = g.kernelW; strideH = 1; strideW = 1
        padH = g.kernelH - 1 - g.padH; padW = g.kernelW - 1 - g.padW
        outHeight = g.height; outWidth = g.width
    }

    var rows: Int { channels * kernelH * kernelW }
    var columns: Int { outHeight * outWidth }

    /// Output positions `lo..<hi` along one axis whose input index `o*stride - pad + k` is in `0..<size`.
    @inline(__always)
    static func validRange(k: Int, size: Int, stride: Int, pad: Int, out: Int) -> (lo: Int, hi: Int) {
        if stride == 1 {   // no integer division (it showed in profiles of the chunked im2col)
            let lo = min(out, max(0, pad - k))
            return (lo, max(lo, min(out, size + pad - k)))
        }
        let lo = pad - k > 0 ? (pad - k + stride - 1) / stride : 0
        let last = size - 1 + pad - k
        let hi = last < 0 ? 0 : min(out, last / stride + 1)
        return (min(lo, out), max(hi, min(lo, out)))
    }
}

/// Unfolds output rows `rows` of one image x (C, H, W) into col (C*R*S, rows.count*Q):
/// `col[(c*R + i)*S + j, (p - rows.lowerBound)*Q + q] = x[c, p*strideH - padH + i, q*strideW - padW + j]`,
/// 0 outside the image.
func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ u: Unfold, rows: Range<Int>) {
    let plane = u.height * u.width, q = u.outWidth, n = rows.count * q
    // Stride 1 with outWidth == width: each column row is the image plane shifted by a constant
    // offset, so it is one memcpy plus zeroing of the wrapped-around border columns.
    let flat = u.strideH == 1 && u.strideW == 1 && u.outWidth == u.width
    for c in 0..<u.channels {
        let xc = x + c * plane
        for i in 0..<u.kernelH {
            var (pLo, pHi) = Unfold.validRange(k: i, size: u.height, stride: u.strideH, pad: u.padH, out: u.outHeight)
            pLo = min(max(pLo, rows.lowerBound), rows.upperBound) - rows.lowerBound
            pHi = max(min(pHi, rows.upperBound) - rows.lowerBound, pLo)
            for j in 0..<u.kernelW {
                let row = col + ((c * u.kernelH + i) * u.kernelW + j) * n
                let (qLo, qHi) = Unfold.validRange(k: j, size: u.width, stride: u.strideW, pad: u.padW, out: q)
                if pLo >= pHi || qLo >= qHi {
                    row.update(repeating: 0, count: n)
                    continue
                }
                if flat {
                    let first = pLo * q + qLo, end = (pHi - 1) * q + qHi
                    let shift = (rows.lowerBound + i - u.padH) * u.width + (j - u.padW)
                    row.update(repeating: 0, count: first)
                    memcpy(row + first, xc + first + shift, (end - first) * MemoryLayout<Float>.stride)
                    (row + end).update(repeating: 0, count: n - end)
                    if qLo > 0 || qHi < q {
                        for p in pLo..<pHi {
                            let r = row + p * q
                            for t in 0..<qLo { r[t] = 0 }
                            for t in qHi..<q { r[t] = 0 }
                        }
                    }
                    continue
                }
                row.update(repeating: 0, count: pLo * q)
                for p in pLo..<pHi {
                    let r = row + p * q
                    let src = xc + ((p + rows.lowerBound) * u.strideH - u.padH + i) * u.width + (qLo * u.strideW - u.padW + j)
                    for t in 0..<qLo { r[t] = 0 }
                    if u.strideW == 1 {
                        (r + qLo).update(from: src, count: qHi - qLo)
                    } else {
                        for t in 0..<(qHi - qLo) { r[qLo + t] = src[t * u.strideW] }
                    }
                    for t in qHi..<q { r[t] = 0 }
                }
                (row + pHi * q).update(repeating: 0, count: n - pHi * q)
            }
        }
    }
}

/// The adjoint of `im2col`: dx (C, H, W) = sum of col's entries at the positions they were read from.
func col2im(_ col: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ u: Unfold) {
    let plane = u.height * u.width, pq = u.columns
    dx.update(repeating: 0, count: u.channels * plane)
    for c in 0..<u.channels {
        let dxc = dx + c * plane
        for i in 0..<u.kernelH {
            let (pLo, pHi) = Unfold.validRange(k: i, size: u.height, stride: u.strideH, pad: u.padH, out: u.outHeight)
            for j in 0..<u.kernelW {
                let row = col + ((c * u.kernelH + i) * u.kernelW + j) * pq
                let (qLo, qHi) = Unfold.validRange(k: j, size: u.width, stride: u.strideW, pad: u.padW, out: u.outWidth)
                if qLo >= qHi { continue }
                for p in pLo..<pHi {
                    let r = row + p * u.outWidth
                    let dst = dxc + (p * u.strideH - u.padH + i) * u.width + (qLo * u.strideW - u.padW + j)
                    for t in 0..<(qHi - qLo) { dst[t * u.strideW] += r[qLo + t] }
                }
            }
        }
    }
}

/// Stride-1 convolution as R GEMMs over S column-shifted copies of the zero-padded image
/// ("shifted rows"): with `xs[c*S + j, r*Wp + t] = xpad[c, r, t + j]` (Hp x Wp padded planes),
/// kernel row i adds `W_i (F, C*S) . xs[:, i*Wp ..< i*Wp + P*Wp]` (row stride Hp*Wp) into a wide
/// output (F, P*Wp), whose last S-1 columns per row are dropped. The copies are S times the image
/// (3x for 3x3) instead of im2col's R*S times, and for ResNet-20 each GEMM stays under OpenBLAS's
/// small-matrix limit, so it reads xs in place instead of packing it.
struct ShiftedRows {
    var channels, height, width, kernelH, kernelW, padH, padW: Int

    init(input g: ConvGeometry) {
        channels = g.inChannels; height = g.height; width = g.width
        kernelH = g.kernelH; kernelW = g.kernelW; padH = g.padH; padW = g.padW
    }

    /// dy of a stride-1 convolution, for the full correlation with the flipped filter (output H x W).
    init(flippedGradOutput g: ConvGeometry) {
        channels = g.outChannels; height = g.outHeight; width = g.outWidth
        kernelH = g.kernelH; kernelW = g.kernelW; padH = g.kernelH - 1 - g.padH; padW = g.kernelW - 1 - g.padW
    }

    var paddedWidth: Int { width + 2 * padW }
    var paddedHeight: Int { height + 2 * padH }
    var plane: Int { paddedWidth * paddedHeight }
    /// The GEMM depth C*S.
    var depth: Int { channels * kernelW }
    var outHeight: Int { paddedHeight - kernelH + 1 }
    var outWidth: Int { paddedWidth - kernelW + 1 }
    /// Columns of the wide output: P rows of Wp.
    var wideColumns: Int { outHeight * paddedWidth }
}

/// Writes xs (C*S, Hp*Wp) for one image x (C, H, W): `xs[c*S + j, r*Wp + t] = xpad[c, r, t + j]`,
/// 0 where that is padding or past the padded width.
func shiftedCopies(_ x: UnsafePointer<Float>, _ xs: UnsafeMutablePointer<Float>, _ s: ShiftedRows) {
    let wp = s.paddedWidth, hw = s.height * s.width
    for c in 0..<s.channels {
        for j in 0..<s.kernelW {
            let d = xs + (c * s.kernelW + j) * s.plane
            d.update(repeating: 0, count: s.padH * wp)
            (d + (s.padH + s.height) * wp).update(repeating: 0, count: s.padH * wp)
            let t0 = min(wp, max(0, s.padW - j)), t1 = max(t0, min(wp, s.width + s.padW - j))
            for r in 0..<s.height {
                let dr = d + (r + s.padH) * wp
                for t in 0..<t0 { dr[t] = 0 }
                if t1 > t0 { (dr + t0).update(from: x + c * hw + r * s.width + (t0 + j - s.padW), count: t1 - t0) }
                for t in t1..<wp { dr[t] = 0 }
            }
        }
    }
}

/// Row-major sgemm on raw pointers: `c (m, n) = alpha * op(a) * op(b) + beta * c`.
@inline(__always)
func sgemmRowMajor(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int,
                   _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                   _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

extension ConvGeometry {
    /// 1x1, stride 1, no padding: the input image is already the column matrix.
    var isPointwise: Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0
    }
}

/// How the CPU convolution cuts its GEMMs: decided once from the OpenBLAS core; tests override it
/// to reach every code path on any machine.
struct ConvolutionTuning {
    /// Whether OpenBLAS runs small GEMMs (M*N*K <= 1e6; transposed on the left only while
    /// M*N <= 1200) with its unpacked small-matrix kernels, which it has for AVX-512 cores only.
    /// Those read the operands in place instead of packing them, so with them stride-1
    /// convolutions use `ShiftedRows` (one thread, of sgemm 1024^3, 16->16 / 32->32 fwd+bwd:
    /// 62% / 62%, vs 42% / 51% for whole-image im2col) and other strides cut im2col into row chunks
    /// under the limit. The AVX2 kernels always pack; there whole-image im2col is best (57% / 66%;
    /// shifted rows measured the same or worse). Measurements: bench/NOTES.md.
    var smallMatrixKernels: Bool
    /// Output rows per GEMM; nil chooses from `smallMatrixKernels`.
    var rowsPerChunk: Int?
    /// OpenBLAS's limit on M*N for a small-matrix GEMM transposed on the left (column-major
    /// view), which shifted-rows backward-filter checks; tests lower it to reach the other form.
    var smallTransposedGEMMLimit = 1200

    static var current = ConvolutionTuning(smallMatrixKernels: openBLASHasSmallMatrixKernels(), rowsPerChunk: nil)

    static func openBLASHasSmallMatrixKernels() -> Bool {
        guard let name = openblas_get_corename() else { return false }
        let core = String(cString: name).lowercased()
        return ["skylakex", "cooperlake", "sapphirerapids"].contains { core.contains($0) }
    }

    /// Output rows per GEMM: whole images, or with small-matrix kernels, the most rows whose
    /// GEMM (m x columns x K) stays under their limit, when that is at least 64 columns (fewer
    /// ran slower than whole images: 64->64 on 8x8 in 3-row chunks, 44% vs 50%).
    func rowsPerChunk(_ u: Unfold, gemmRows m: Int) -> Int {
        if let rowsPerChunk { return max(1, min(u.outHeight, rowsPerChunk)) }
        guard smallMatrixKernels else { return u.outHeight }
        let rows = min(u.outHeight, 1_000_000 / (m * u.rows * u.outWidth))
        return rows * u.outWidth >= 64 ? rows : u.outHeight
    }
}

extension CPUBackend {
    /// How many workers share a batch (one contiguous range of images each).
    private func imageParts(_ batch: Int) -> Int { max(1, min(threads, batch)) }

    /// Runs `body(part, images)` for `parts` contiguous ranges of `0..<batch` in parallel.
    /// Inside, OpenBLAS is single-threaded: every worker calls sgemm on its own images, and a
    /// multi-threaded OpenBLAS called from several threads at once would oversubscribe the cores.
    private func forEachImageRange(_ batch: Int, parts: Int, _ body: (_ part: Int, _ images: Range<Int>) -> Void) {
        if parts <= 1 {
            body(0, 0..<batch)   // one range: OpenBLAS may use all cores inside the GEMM
            return
        }
        openblas_set_num_threads(1)
        OpenMPTeam.run(parts: parts) { p in
            body(p, (batch * p / parts)..<(batch * (p + 1) / parts))
        }
        openblas_set_num_threads(Int32(threads))
    }

    private func checkShapes(_ g: ConvGeometry, x: [Int], w: [Int], y: [Int]) {
        precondition(x == g.inputShape, "\(g): input \(x), expected \(g.inputShape)")
        precondition(w == g.weightShape, "\(g): weight \(w), expected \(g.weightShape)")
        precondition(y == g.outputShape, "\(g): output \(y), expected \(g.outputShape)")
    }

    /// y_n (M, P*Q) = A (M, K) . col(x_n) (K, P*Q) for every image n, in row chunks of col;
    /// shared by forward and the stride-1 backward-data.
    private func unfoldedProduct(_ u: Unfold, batch: Int, a: UnsafePointer<Float>, m: Int,
                                 input x: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>, pointwise: Bool) {
        let k = u.rows, pq = u.columns, q = u.outWidth, imageSize = u.channels * u.height * u.width
        let chunk = ConvolutionTuning.current.rowsPerChunk(u, gemmRows: m)
        forEachImageRange(batch, parts: imageParts(batch)) { part, images in
            let col = pointwise ? nil : workspace.buffer(slot: ConvSlot.column + part, count: k * chunk * q)
            for n in images {
                let xn = x + n * imageSize, yn = y + n * m * pq
                for r0 in stride(from: 0, to: u.outHeight, by: chunk) {
                    let rows = r0..<min(u.outHeight, r0 + chunk), columns = rows.count * q
                    if let col {
                        im2col(xn, col, u, rows: rows)   // (K, columns)
                        sgemmRowMajor(false, false, m, columns, k, a, k, col, columns, 0, yn + r0 * q, pq)
                    } else {
                        sgemmRowMajor(false, false, m, columns, k, a, k, xn + r0 * q, pq, 0, yn + r0 * q, pq)
                    }
                }
            }
        }
    }

    /// y_n (M, P*Q) = the stride-1 convolution of x_n with the filter given per kernel row,
    /// `rowWeights` (R, M, C*S), for every image n (see `ShiftedRows`).
    private func shiftedRowsProduct(_ s: ShiftedRows, batch: Int, rowWeights a: UnsafePointer<Float>, m: Int,
                                    input x: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>) {
        let wp = s.paddedWidth, n = s.wideColumns, k = s.depth, p = s.outHeight, q = s.outWidth
        let imageSize = s.channels * s.height * s.width
        forEachImageRange(batch, parts: imageParts(batch)) { part, images in
            let xs = workspace.buffer(slot: ConvSlot.column + part, count: k * s.plane)   // (C*S, Hp*Wp)
            let wide = workspace.buffer(slot: ConvSlot.wideOutput + part, count: m * n)    // (M, P*Wp)
            for image in images {
                shiftedCopies(x + image * imageSize, xs, s)
                for i in 0..<s.kernelH {
                    sgemmRowMajor(false, false, m, n, k, a + i * m * k, k, xs + i * wp, s.plane, i == 0 ? 0 : 1, wide, n)
                }
                let yn = y + image * m * p * q
                for o in 0..<m {
                    for r in 0..<p { (yn + (o * p + r) * q).update(from: wide + o * n + r * wp, count: q) }
                }
            }
        }
    }

    public func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        checkShapes(g, x: x.shape, w: w.shape, y: y.shape)
        if let bias { precondition(bias.count == g.outChannels, "\(g): bias \(bias.shape)") }
        if CPUConvolutionEngine.current != .im2col {
            dnnlConvolutionForward(g, input: x, weight: w, bias: bias, output: y)
            return
        }
        if !g.isPointwise && g.strideH == 1 && g.strideW == 1 && ConvolutionTuning.current.smallMatrixKernels {
            // wr[i, f, c*S + j] = w[f, c, i, j]
            let (c, f, r, sw) = (g.inChannels, g.outChannels, g.kernelH, g.kernelW)
            let wp = w.hostPointer
            let wr = workspace.buffer(slot: ConvSlot.rowWeights, count: w.count)
            for o in 0..<f {
                for ci in 0..<c {
                    for i in 0..<r {
                        for j in 0..<sw { wr[(i * f + o) * c * sw + ci * sw + j] = wp[((o * c + ci) * r + i) * sw + j] }
                    }
                }
            }
            shiftedRowsProduct(ShiftedRows(input: g), batch: g.batch, rowWeights: wr, m: f,
                               input: x.hostPointer, output: y.hostPointer)
        } else {
            unfoldedProduct(Unfold(input: g), batch: g.batch, a: w.hostPointer, m: g.outChannels,
                            input: x.hostPointer, output: y.hostPointer, pointwise: g.isPointwise)
        }
        if let bias { addBias(y, bias: bias) }
    }

    public func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        checkShapes(g, x: dx.shape, w: w.shape, y: dy.shape)
        if CPUConvolutionEngine.current != .im2col {
            dnnlConvolutionBackwardData(g, gradOutput: dy, weight: w, gradInput: dx)
            return
        }
        let c = g.inChannels, f = g.outChannels, rs = g.kernelH * g.kernelW
        let hw = g.height * g.width, pq = g.outHeight * g.outWidth
        let dyp = dy.hostPointer   // (N, F, P*Q)
        let wp = w.hostPointer     // (F, C, R, S)
        let dxp = dx.hostPointer   // (N, C, H*W)

        if g.isPointwise {
            // dx_n (C, HW) = W^T (C, F) . dy_n (F, HW)
            forEachImageRange(g.batch, parts: imageParts(g.batch)) { _, images in
                for n in images {
                    sgemmRowMajor(true, false, c, hw, f, wp, c, dyp + n * f * pq, pq, 0, dxp + n * c * hw, hw)
                }
            }
        } else if g.strideH == 1 && g.strideW == 1 && g.padH < g.kernelH && g.padW < g.kernelW
                    && ConvolutionTuning.current.smallMatrixKernels {
            // The full correlation of dy with the flipped filter, per kernel row:
            // wr[i, c, f*S + j] = w[f, c, R-1-i, S-1-j].
            let (r, sw) = (g.kernelH, g.kernelW)
            let wr = workspace.buffer(slot: ConvSlot.rowWeights, count: w.count)
            for o in 0..<f {
                for ci in 0..<c {
                    for i in 0..<r {
                        for j in 0..<sw {
                            wr[(i * c + ci) * f * sw + o * sw + j] = wp[((o * c + ci) * r + (r - 1 - i)) * sw + (sw - 1 - j)]
                        }
                    }
                }
            }
            shiftedRowsProduct(ShiftedRows(flippedGradOutput: g), batch: g.batch, rowWeights: wr, m: c,
                               input: dyp, output: dxp)
        } else if g.strideH == 1 && g.strideW == 1 && g.padH < g.kernelH && g.padW < g.kernelW {
            // The full correlation of dy with wf[c, f, r, s] = w[f, c, R-1-r, S-1-s]: (C, F*R*S).
            let wf = workspace.buffer(slot: ConvSlot.flippedWeight, count: c * f * rs)
            for o in 0..<f {
                for i in 0..<c {
                    for t in 0..<rs { wf[(i * f + o) * rs + t] = wp[(o * c + i) * rs + (rs - 1 - t)] }
                }
            }
            unfoldedProduct(Unfold(flippedGradOutput: g), batch: g.batch, a: wf, m: c,
                            input: dyp, output: dxp, pointwise: false)
        } else {
            // col (K, PQ) = W^T (K, F) . dy_n (F, PQ), then scatter-add into dx_n.
            let u = Unfold(input: g)
            forEachImageRange(g.batch, parts: imageParts(g.batch)) { part, images in
                let col = workspace.buffer(slot: ConvSlot.column + part, count: u.rows * pq)
                for n in images {
                    sgemmRowMajor(true, false, u.rows, pq, f, wp, u.rows, dyp + n * f * pq, pq, 0, col, pq)
                    col2im(col, dxp + n * c * hw, u)
                }
            }
        }
    }

    public func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                     gradWeight dw: Tensor, mode: GradMode) {
        checkShapes(g, x: x.shape, w: dw.shape, y: dy.shape)
        if CPUConvolutionEngine.current != .im2col {
            dnnlConvolutionBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)
            return
        }
        if !g.isPointwise && g.strideH == 1 && g.strideW == 1 && ConvolutionTuning.current.smallMatrixKernels {
            shiftedRowsBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)
            return
        }
        let u = Unfold(input: g)
        let f = g.outChannels, k = u.rows, pq = u.columns, q = u.outWidth
        let imageSize = g.inChannels * g.height * g.width
        let xp = x.hostPointer     // (N, C, H, W)
        let dyp = dy.hostPointer   // (N, F, P*Q)
        let dwp = dw.hostPointer   // (F, K)
        let parts = imageParts(g.batch), pointwise = g.isPointwise
        let tuning = ConvolutionTuning.current
        let chunk = tuning.rowsPerChunk(u, gemmRows: f)
        // Each worker sums dW^T (K, F) over its images: col (K, columns) . dy^T (columns, F). With
        // small-matrix kernels dy's chunk is transposed first, so that the GEMM is not transposed
        // on the left (which those kernels do not take at this size).
        forEachImageRange(g.batch, parts: parts) { part, images in
            let col = pointwise ? nil : workspace.buffer(slot: ConvSlot.column + part, count: k * chunk * q)
            let dyT = tuning.smallMatrixKernels ? workspace.buffer(slot: ConvSlot.transposedGrad + part, count: chunk * q * f) : nil
            let dwT = workspace.buffer(slot: ConvSlot.partialGrad + part, count: k * f)   // (K, F)
            dwT.update(repeating: 0, count: k * f)
            for n in images {
                let xn = xp + n * imageSize, dyn = dyp + n * f * pq
                for r0 in stride(from: 0, to: u.outHeight, by: chunk) {
                    let rows = r0..<min(u.outHeight, r0 + chunk), columns = rows.count * q
                    let b: UnsafePointer<Float>, ldb: Int
                    if let col { im2col(xn, col, u, rows: rows); b = UnsafePointer(col); ldb = columns } else { b = UnsafePointer(xn + r0 * q); ldb = pq }
                    if let dyT {
                        for o in 0..<f {
                            let src = dyn + o * pq + r0 * q
                            for t in 0..<columns { dyT[t * f + o] = src[t] }
                        }
                        sgemmRowMajor(false, false, k, f, columns, b, ldb, dyT, f, 1, dwT, f)
                    } else {
                        sgemmRowMajor(false, true, k, f, columns, b, ldb, dyn + r0 * q, pq, 1, dwT, f)
                    }
                }
            }
        }
        // dw (F, K) (+)= the sum of the workers' dW^T parts, in worker order (deterministic).
        for p in 0..<parts {
            let dwT = workspace.buffer(slot: ConvSlot.partialGrad + p, count: k * f)
            let keep = p > 0 || mode == .accumulate
            for o in 0..<f {
                for t in 0..<k { dwp[o * k + t] = (keep ? dwp[o * k + t] : 0) + dwT[t * f + o] }
            }
        }
    }

    /// Backward-filter of a stride-1 convolution on shifted rows: each worker sums, per kernel
    /// row i, the product of dy in the wide layout (F, P*Wp, zeros in the Wp - Q extra columns of
    /// each row) with xs[:, i*Wp ..< i*Wp + P*Wp]^T. OpenBLAS's small-matrix kernels take that
    /// product transposed on the left only while (C*S)*F <= 1200; above, dy is transposed first
    /// so the GEMM is plain (16->16: 59% vs 45% of sgemm with the transpose; 32->32: 59% vs 37%
    /// without it, packed).
    private func shiftedRowsBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                           gradWeight dw: Tensor, mode: GradMode) {
        let s = ShiftedRows(input: g)
        let wp = s.paddedWidth, n = s.wideColumns, k = s.depth, p = s.outHeight, q = s.outWidth
        let (c, f, r, sw) = (g.inChannels, g.outChannels, g.kernelH, g.kernelW)
        let xp = x.hostPointer     // (N, C, H, W)
        let dyp = dy.hostPointer   // (N, F, P, Q)
        let dwp = dw.hostPointer   // (F, C, R, S)
        let parts = imageParts(g.batch), imageSize = c * g.height * g.width
        let transposed = k * f > ConvolutionTuning.current.smallTransposedGEMMLimit
        forEachImageRange(g.batch, parts: parts) { part, images in
            let xs = workspace.buffer(slot: ConvSlot.column + part, count: k * s.plane)     // (C*S, Hp*Wp)
            // transposed: (P*Wp, F), partial (R, C*S, F); else (F, P*Wp), partial (R, F, C*S)
            let wide = workspace.buffer(slot: ConvSlot.transposedGrad + part, count: n * f)
            let partial = workspace.buffer(slot: ConvSlot.partialGrad + part, count: r * k * f)
            partial.update(repeating: 0, count: r * k * f)
            if transposed {
                for row in 0..<p {
                    for t in q..<wp { (wide + (row * wp + t) * f).update(repeating: 0, count: f) }
                }
            }
            for image in images {
                shiftedCopies(xp + image * imageSize, xs, s)
                let dyn = dyp + image * f * p * q
                for o in 0..<f {
                    for row in 0..<p {
                        let src = dyn + (o * p + row) * q
                        if transposed {
                            let dst = wide + row * wp * f + o
                            for t in 0..<q { dst[t * f] = src[t] }
                        } else {
                            let dst = wide + o * n + row * wp
                            dst.update(from: src, count: q)
                            (dst + q).update(repeating: 0, count: wp - q)
                        }
                    }
                }
                for i in 0..<r {
                    if transposed {
                        sgemmRowMajor(false, false, k, f, n, xs + i * wp, s.plane, wide, f, 1, partial + i * k * f, f)
                    } else {
                        sgemmRowMajor(false, true, f, k, n, wide, n, xs + i * wp, s.plane, 1, partial + i * f * k, k)
                    }
                }
            }
        }
        // dw (+)= the sum of the workers' parts, in worker order (deterministic).
        for p in 0..<parts {
            let part = workspace.buffer(slot: ConvSlot.partialGrad + p, count: r * k * f)
            let keep = p > 0 || mode == .accumulate
            for o in 0..<f {
                for ci in 0..<c {
                    for i in 0..<r {
                        for j in 0..<sw {
                            let d = ((o * c + ci) * r + i) * sw + j
                            let e = transposed ? (i * k + ci * sw + j) * f + o : (i * f + o) * k + ci * sw + j
                            dwp[d] = (keep ? dwp[d] : 0) + part[e]
                        }
                    }
                }
            }
        }
    }

    public func addBias(_ y: Tensor, bias: Tensor) {
        let (n, c, h, w) = y.nchw
        precondition(bias.count == c, "addBias: bias \(bias.shape) for \(y.shape)")
        let yp = y.hostPointer, bp = bias.hostPointer, hw = h * w
        parallelFor(n * c, grain: max(1, 32768 / max(1, hw))) { rows in
            for r in rows {
                let v = bp[r % c], row = yp + r * hw
                for t in 0..<hw { row[t] += v }
            }
        }
    }

    public func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        let (n, c, h, w) = dy.nchw
        precondition(db.count == c, "biasBackward: bias \(db.shape) for \(dy.shape)")
        let dyp = dy.hostPointer, dbp = db.hostPointer, hw = h * w
        if mode == .overwrite { dbp.update(repeating: 0, count: c) }
        guard n > 0 && c > 0 && hw > 0 else { return }
        // Row sums by sgemv against a vector of ones: db (C) += dy_n (C, HW) . 1 for each image,
        // or db (C) += dy^T (C, N) . 1 when there is no spatial extent.
        let ones = workspace.buffer(slot: ConvSlot.ones, count: max(n, hw))
        ones.update(repeating: 1, count: max(n, hw))
        if hw == 1 {
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(n), Int32(c), 1, dyp, Int32(c), ones, 1, 1, dbp, 1)
        } else {
            for i in 0..<n {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(c), Int32(hw), 1, dyp + i * c * hw, Int32(hw),
                            ones, 1, 1, dbp, 1)
            }
        }
    }
}
