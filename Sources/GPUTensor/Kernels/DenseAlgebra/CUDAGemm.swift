#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// The k = 0 case of gemm.
    static let gemm = #"""
// ---- Gemm helper ------------------------------------------------------------------------------
// out = beta == 0 ? 0 : beta * out (gemm with k = 0).
extern "C" __global__ void scale_or_zero_f32(float* x, i64 n, float beta) {
    GRID_STRIDE(i, n) x[i] = beta == 0.0f ? 0.0f : beta * x[i];
}
"""#
}

extension CUDAKernels {
    /// `scale_or_zero_f32(float* x, i64 n, float beta)`
    static let scaleOrZero = CUDAKernel<Tensor, Int, Float>(.scale_or_zero_f32)
}

// MARK: Launchers

extension CUDABackend {
    /// Row-major `c = alpha * op(a) * op(b) + beta * c` through column-major cuBLAS: a row-major
    /// (m, n) matrix is a column-major (n, m) one, so we ask for `c^T = op(b)^T * op(a)^T`,
    /// i.e. swap the operands and the sizes m and n; leading dimensions stay the row lengths.
    /// TF32 tensor cores unless `strictFP32` (cublasSetMathMode, set by the backend); under a
    /// reduced precision, `cublasGemmEx` on 16-bit copies of a and b with FP32 c and compute.
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        ShapeChecks.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, b: b, c: c)
        guard m > 0 && n > 0 else { return }
        guard k > 0 else {
            launch(CUDAKernels.scaleOrZero, count: m * n, c, m * n, beta)
            return
        }
        var alpha = alpha, beta = beta
        if precision != .fp32 {
            return recordFailure {
                let types = CUDAPrecisionFormats(precision)
                let a16 = try reducedCopy(a, slot: 0), b16 = try reducedCopy(b, slot: 1)
                try queuedCUBLAS("cublasGemmEx(\(m)x\(n)x\(k), \(precision.rawValue))") {
                    cublasGemmEx(blas, transposeB ? CUBLAS_OP_T : CUBLAS_OP_N, transposeA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 Int32(n), Int32(m), Int32(k), &alpha,
                                 b16, types.blasInput, Int32(transposeB ? k : n),
                                 a16, types.blasInput, Int32(transposeA ? m : k),
                                 &beta, c.rawAddress, types.blasOutput, Int32(n), types.blasCompute, CUBLAS_GEMM_DEFAULT)
                }
            }
        }
        recordFailure {
            try queuedCUBLAS("cublasSgemm(\(m)x\(n)x\(k))") {
                cublasSgemm_v2(blas, transposeB ? CUBLAS_OP_T : CUBLAS_OP_N, transposeA ? CUBLAS_OP_T : CUBLAS_OP_N,
                               Int32(n), Int32(m), Int32(k), &alpha,
                               b.rawAddress.assumingMemoryBound(to: Float.self), Int32(transposeB ? k : n),
                               a.rawAddress.assumingMemoryBound(to: Float.self), Int32(transposeA ? m : k),
                               &beta, c.rawAddress.assumingMemoryBound(to: Float.self), Int32(n))
            }
        }
    }

    /// `gemmBatched` as one `cublasSgemmStridedBatched` (the operand swap of `gemm`, matrix
    /// strides m*k, k*n and m*n): a trial group's G dense layers in one launch.
    public func gemmBatched(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, batch: Int,
                            alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        ShapeChecks.gemmBatched(m: m, n: n, k: k, batch: batch, a: a, b: b, c: c)
        guard m > 0 && n > 0 && batch > 0 else { return }
        guard k > 0 else {
            launch(CUDAKernels.scaleOrZero, count: batch * m * n, c, batch * m * n, beta)
            return
        }
        var alpha = alpha, beta = beta
        if precision != .fp32 {
            return recordFailure {
                let types = CUDAPrecisionFormats(precision)
                let a16 = try reducedCopy(a, slot: 0), b16 = try reducedCopy(b, slot: 1)
                try queuedCUBLAS("cublasGemmStridedBatchedEx(\(batch) x \(m)x\(n)x\(k), \(precision.rawValue))") {
                    cublasGemmStridedBatchedEx(blas, transposeB ? CUBLAS_OP_T : CUBLAS_OP_N, transposeA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                               Int32(n), Int32(m), Int32(k), &alpha,
                                               b16, types.blasInput, Int32(transposeB ? k : n), Int64(k * n),
                                               a16, types.blasInput, Int32(transposeA ? m : k), Int64(m * k),
                                               &beta, c.rawAddress, types.blasOutput, Int32(n), Int64(m * n),
                                               Int32(batch), types.blasCompute, CUBLAS_GEMM_DEFAULT)
                }
            }
        }
        recordFailure {
            try queuedCUBLAS("cublasSgemmStridedBatched(\(batch) x \(m)x\(n)x\(k))") {
                cublasSgemmStridedBatched(blas, transposeB ? CUBLAS_OP_T : CUBLAS_OP_N, transposeA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          Int32(n), Int32(m), Int32(k), &alpha,
                                          b.rawAddress.assumingMemoryBound(to: Float.self), Int32(transposeB ? k : n),
                                          Int64(k * n),
                                          a.rawAddress.assumingMemoryBound(to: Float.self), Int32(transposeA ? m : k),
                                          Int64(m * k),
                                          &beta, c.rawAddress.assumingMemoryBound(to: Float.self), Int32(n), Int64(m * n),
                                          Int32(batch))
            }
        }
    }
}
#endif
