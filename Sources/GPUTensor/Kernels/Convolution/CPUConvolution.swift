#if canImport(Glibc)
import Glibc
#endif

// Convolution on the CPU: oneDNN's primitives (DNNLConvolution.swift) on channels-last storage.
//
// Until 2026-11 these were per-image im2col (or "shifted rows") + single-threaded OpenBLAS
// sgemm per core, at 52-95 GFLOP/s on ResNet-20's shapes on our 2-core machine kind; oneDNN on
// NHWC copies runs the same shapes at 75-213 (fwd+bwd 1.3-2.2x), and trained ResNet-20 1.3-1.5x,
// VGG-16 1.9-2.2x faster (bench/NOTES.md section 5), so the im2col kernels were deleted. The one
// direction where they were faster, the 3-channel stem's backward-filter (47 vs ~37 GFLOP/s,
// under 1 ms of a 300 ms ResNet-20 step), did not justify a second implementation.
// The float64 references in Verification/ConvolutionChecks.swift remain the oracle.

extension CPUBackend {
    public func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        ShapeChecks.conv2d(g, input: x, weight: w, output: y, bias: bias, "conv2dForward")
        dnnlConvolutionForward(g, input: x, weight: w, bias: bias, output: y)
    }

    public func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        ShapeChecks.conv2d(g, input: dx, weight: w, output: dy, "conv2dBackwardData")
        dnnlConvolutionBackwardData(g, gradOutput: dy, weight: w, gradInput: dx)
    }

    public func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                     gradWeight dw: Tensor, mode: GradMode) {
        ShapeChecks.conv2d(g, input: x, weight: dw, output: dy, "conv2dBackwardFilter")
        dnnlConvolutionBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)
    }

    /// (N, C) and channels-last (N, C, H, W) alike are rows of C values (CPULayout.swift).
    public func addBias(_ y: Tensor, bias: Tensor) {
        ShapeChecks.bias(y, bias: bias, "addBias")
        let (_, c, _, _) = y.nchw
        let yp = y.hostPointer, bp = bias.hostPointer, rows = y.count / max(1, c)
        parallelFor(rows, grain: Self.grain(itemCost: c)) { r in
            for i in r {
                let row = yp + i * c
                for k in 0..<c { row[k] += bp[k] }
            }
        }
    }

    public func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        ShapeChecks.bias(dy, bias: db, "biasBackward")
        let (_, c, _, _) = dy.nchw
        let dyp = dy.hostPointer, dbp = db.hostPointer, rows = dy.count / max(1, c)
        guard rows > 0 && c > 0 else {
            if mode == .overwrite { dbp.update(repeating: 0, count: c) }
            return
        }
        // Column sums of the (rows, C) matrix, threads over row chunks (OpenBLAS's sgemv against
        // a vector of ones ran on one thread at half the speed on (N*H*W, C)).
        withUnsafeTemporaryAllocation(of: Double.self, capacity: c) { buffer in
            let sums = buffer.baseAddress!
            columnSums(dyp, rows: rows, cols: c, slot: biasSumsSlot, into: sums)
            for k in 0..<c { dbp[k] = mode == .overwrite ? Float(sums[k]) : dbp[k] + Float(sums[k]) }
        }
    }
}

/// Workspace slot of biasBackward's per-chunk partial sums.
private let biasSumsSlot = 0xC3_00
