#if CUDA
import CCuda

extension CUDABackend {
    /// Row-major `c = alpha * op(a) * op(b) + beta * c` through column-major cuBLAS: a row-major
    /// (m, n) matrix is a column-major (n, m) one, so we ask for `c^T = op(b)^T * op(a)^T`,
    /// i.e. swap the operands and the sizes m and n; leading dimensions stay the row lengths.
    /// TF32 tensor cores unless `strictFP32` (cublasSetMathMode, set by the backend).
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm with negative size \(m)x\(n)x\(k)")
        precondition(a.count == m * k, "gemm: a \(a.shape) is not \(transposeA ? "(k, m)" : "(m, k)") = \(m), \(k)")
        precondition(b.count == k * n, "gemm: b \(b.shape) is not \(transposeB ? "(n, k)" : "(k, n)") = \(k), \(n)")
        precondition(c.count == m * n, "gemm: c \(c.shape) is not (m, n) = (\(m), \(n))")
        guard m > 0 && n > 0 else { return }
        guard k > 0 else {
            launch(.scale_or_zero_f32, count: m * n, .tensor(c), .int(m * n), .float(beta))
            return
        }
        var alpha = alpha, beta = beta
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
}
#endif
