#if canImport(Glibc)
import Glibc
#endif

// The DenseAlgebra family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).
//
// Tolerance against float64: atol 1e-5, rtol 1e-4 (k <= 37: float32 rounding is about
// sqrt(k) * 6e-8 * sum|terms|).

/// `c = alpha * op(a) * op(b) + beta * c` in float64, row-major.
func referenceGemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                   alpha: Double, a: [Double], b: [Double], beta: Double, c: [Double]) -> [Double] {
    var out = c
    for i in 0..<m {
        for j in 0..<n {
            var acc = 0.0
            for t in 0..<k {
                let av = transposeA ? a[t * m + i] : a[i * k + t]
                let bv = transposeB ? b[j * k + t] : b[t * n + j]
                acc += av * bv
            }
            out[i * n + j] = alpha * acc + beta * c[i * n + j]
        }
    }
    return out
}

extension KernelChecks {
    /// GEMM, all transposes.
    static var denseAlgebraKernels: [KernelCheck] {
        [
            KernelCheck("gemm", run: gemmChecks),
        ]
    }

    static let gemmTolerance = Tolerance(atol: 1e-5, rtol: 1e-4)

    static func gemmChecks(_ backend: Backend) throws -> [CheckResult] {
        var results = [CheckResult]()
        let (m, n, k) = (5, 7, 37)
        var seed: UInt64 = 100
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.5)] {
                seed += 1
                let a = checkInput(m * k, seed: seed), b = checkInput(k * n, seed: seed + 50)
                let c = checkInput(m * n, seed: seed + 90)
                let at = try backend.tensor(a, shape: ta ? [k, m] : [m, k])
                let bt = try backend.tensor(b, shape: tb ? [n, k] : [k, n])
                let ct = try backend.tensor(c, shape: [m, n])
                backend.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k,
                             alpha: Float(alpha), a: at, b: bt, beta: Float(beta), c: ct)
                let expected = referenceGemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k,
                                             alpha: alpha, a: a, b: b, beta: beta, c: c)
                let ops = "\(ta ? "T" : "N")\(tb ? "T" : "N")"
                results.append(compare("gemm \(ops) \(m)x\(n)x\(k) alpha \(alpha) beta \(beta)",
                                       actual: try backend.download(ct), expected: expected, tolerance: gemmTolerance))
            }
            // gemmBatched: 3 stacked problems of the same transposes, each against its own reference.
            let batch = 3
            seed += 1
            let a = checkInput(batch * m * k, seed: seed), b = checkInput(batch * k * n, seed: seed + 50)
            let c = checkInput(batch * m * n, seed: seed + 90)
            let at = try backend.tensor(a, shape: ta ? [batch, k, m] : [batch, m, k])
            let bt = try backend.tensor(b, shape: tb ? [batch, n, k] : [batch, k, n])
            let ct = try backend.tensor(c, shape: [batch, m, n])
            backend.gemmBatched(transposeA: ta, transposeB: tb, m: m, n: n, k: k, batch: batch,
                                alpha: 0.75, a: at, b: bt, beta: 0.5, c: ct)
            var expected: [Double] = []
            for i in 0..<batch {
                let (ai, bi, ci) = (i * m * k, i * k * n, i * m * n)
                expected += referenceGemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.75,
                                          a: Array(a[ai..<(ai + m * k)]), b: Array(b[bi..<(bi + k * n)]),
                                          beta: 0.5, c: Array(c[ci..<(ci + m * n)]))
            }
            results.append(compare("gemmBatched \(ta ? "T" : "N")\(tb ? "T" : "N") \(batch) x \(m)x\(n)x\(k)",
                                   actual: try backend.download(ct), expected: expected, tolerance: gemmTolerance))
        }
        return results
    }
}

extension CrossDevice {
    static func gemm(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let (m, n, k) = (33, 17, 129)
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            out += try pair("gemm \(ta ? "T" : "N")\(tb ? "T" : "N") \(m)x\(n)x\(k) alpha 0.5 beta -1", b, r,
                            inputs: [input(ta ? [k, m] : [m, k], seed: 1), input(tb ? [n, k] : [k, n], seed: 2)],
                            outputs: [[m, n]], initial: [input([m, n], seed: 3).values], tolerance: tf32) { be, t, o in
                be.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: t[0], b: t[1], beta: -1, c: o[0])
            }
        }
        return out
    }
}
