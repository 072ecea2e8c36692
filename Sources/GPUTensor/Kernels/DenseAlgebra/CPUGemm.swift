import CDNNL

// Dense layers' GEMMs on oneDNN's `dnnl_sgemm` (row-major, on the same OpenMP team as the
// convolutions). Until 2026-11-30 they ran on OpenBLAS 0.3.21, which Strata then dropped:
// - on one thread, thread-CPU time, this machine kind (AVX-512): dnnl_sgemm 236-252 GFLOP/s on
//   1024^3 and the cnn's and VGG's dense shapes, OpenBLAS 120-125 (its Haswell kernels: it does
//   not recognise the CPU), and 122-125 against 69-70 for the 10-class heads (bench/NOTES.md 7);
// - OpenBLAS's own thread pool competed with the OpenMP team: under load a cnn 48,48,48/500,250
//   step at batch 128 spent 1.12 ms per GEMM against 0.26 on oneDNN;
// - on the first GPU machine OpenBLAS fell back to its SSE3 "Prescott" kernels (156 GFLOP/s on
//   16 threads), while oneDNN picks its kernels from the CPU's features at run time.

extension CPUBackend {
    /// Row-major `c = alpha * op(a) * op(b) + beta * c` through oneDNN's `dnnl_sgemm`.
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        ShapeChecks.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, b: b, c: c)
        guard m > 0 && n > 0 else { return }
        guard k > 0 else {
            // An empty product: c = beta * c (BLAS-style calls reject a leading dimension of 0).
            let p = c.hostPointer
            for i in 0..<(m * n) { p[i] = beta == 0 ? 0 : beta * p[i] }
            return
        }
        dnnl.useThreads()
        let no = CChar(UInt8(ascii: "N")), yes = CChar(UInt8(ascii: "T"))
        let status = dnnl_sgemm(transposeA ? yes : no, transposeB ? yes : no, Int64(m), Int64(n), Int64(k), alpha,
                                a.hostPointer, Int64(transposeA ? m : k), b.hostPointer, Int64(transposeB ? k : n),
                                beta, c.hostPointer, Int64(n))
        dnnlCheck(status, "sgemm \(m)x\(n)x\(k)")
    }
}
