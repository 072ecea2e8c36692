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
//
// In `.bf16` the inputs are rounded to bf16 (round to nearest even) and accumulated in FP32, on
// every shape: large products on oneDNN's bf16 matmul primitive (DNNLMatmul.swift; oneDNN 2.6
// exports no C bf16 GEMM), small ones, where the matmul and its reorders lose to sgemm, in
// dnnl_sgemm on rounded copies: a product of two bf16 values (8 significant bits each) is exact
// in FP32, so that computes the same bf16 numbers (bench/cpu-bf16.md).

/// Workspace slots of the bf16 copies of a GEMM's operands.
private let gemmASlot = 0x6E_00, gemmBSlot = 0x6E_01

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
        if precision == .bf16 && m * n * k >= DNNLMatmulPlan.minimumWork {
            dnnlMatmulBF16(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                           alpha: alpha, a: a, b: b, beta: beta, c: c)
            return
        }
        dnnl.useThreads()
        var ap = UnsafePointer(a.hostPointer), bp = UnsafePointer(b.hostPointer)
        if precision == .bf16 {
            let aCopy = workspace.buffer(slot: gemmASlot, count: m * k)
            let bCopy = workspace.buffer(slot: gemmBSlot, count: k * n)
            roundToBF16(ap, into: aCopy, count: m * k)
            roundToBF16(bp, into: bCopy, count: k * n)
            (ap, bp) = (UnsafePointer(aCopy), UnsafePointer(bCopy))
        }
        let no = CChar(UInt8(ascii: "N")), yes = CChar(UInt8(ascii: "T"))
        let status = dnnl_sgemm(transposeA ? yes : no, transposeB ? yes : no, Int64(m), Int64(n), Int64(k), alpha,
                                ap, Int64(transposeA ? m : k), bp, Int64(transposeB ? k : n),
                                beta, c.hostPointer, Int64(n))
        dnnlCheck(status, "sgemm \(m)x\(n)x\(k)")
    }
}
