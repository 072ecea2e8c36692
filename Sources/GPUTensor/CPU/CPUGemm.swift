import CBLAS

extension CPUBackend {
    /// Row-major `c = alpha * op(a) * op(b) + beta * c` through OpenBLAS `cblas_sgemm`.
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm with negative size \(m)x\(n)x\(k)")
        precondition(a.count == m * k, "gemm: a \(a.shape) is not \(transposeA ? "(k, m)" : "(m, k)") = \(m), \(k)")
        precondition(b.count == k * n, "gemm: b \(b.shape) is not \(transposeB ? "(n, k)" : "(k, n)") = \(k), \(n)")
        precondition(c.count == m * n, "gemm: c \(c.shape) is not (m, n) = (\(m), \(n))")
        guard m > 0 && n > 0 else { return }
        guard k > 0 else {
            // BLAS rejects k = 0 with a leading dimension of 0; the product is empty, so c = beta * c.
            let p = c.hostPointer
            for i in 0..<(m * n) { p[i] = beta == 0 ? 0 : beta * p[i] }
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a.hostPointer, Int32(transposeA ? m : k),
                    b.hostPointer, Int32(transposeB ? k : n),
                    beta, c.hostPointer, Int32(n))
    }
}
