// Checks of a GPU backend computing convolutions and GEMMs in bf16 or fp16 (`--precision`): the
// CUDA backend rounds the FP32 operands to the format (round to nearest even), multiplies on
// tensor cores and accumulates in FP32 (CUDAPrecision.swift). Each shape is compared three ways:
//
// 1. against the float64 result of the FP32 inputs, within the format's error bound for a dot
//    product (`CUDAPrecisionChecks.allowance`): what a user may expect of the format;
// 2. against the float64 result of the inputs rounded as `ReducedRounding` rounds them, within
//    FP32 accumulation (plus one rounding of a convolution's result to the format): this one
//    fails if the device did not round its inputs to the format (computed in FP32 or TF32), or
//    rounded them differently;
// 3. against the CPU backend in the same precision (bf16; the CPU has no fp16), within the sum
//    of both sides' bounds.
// On an FP32 backend they are not run (no results).

/// FP32 to bf16 / fp16 bit patterns, round to nearest with ties to even, and back: the Swift
/// mirror of the CUDA cast kernels (`bf16_bits`, `f16_bits` in CUDAPrecision.swift), compared with
/// them and with an independent nearest-value reference by the host tests.
enum ReducedRounding {
    static func bf16Bits(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        if b & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (b >> 16) | 0x0040) }   // quiet NaN
        return UInt16(truncatingIfNeeded: (b &+ 0x7fff &+ ((b >> 16) & 1)) >> 16)
    }

    static func fp16Bits(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        let sign = (b >> 16) & 0x8000, a = b & 0x7fff_ffff
        if a > 0x7f80_0000 { return UInt16(sign | 0x7e00 | ((a >> 13) & 0x3ff)) }   // quiet NaN
        if a >= 0x477f_f000 { return UInt16(sign | 0x7c00) }                          // >= 65520: infinity
        if a >= 0x3880_0000 {                                                         // normal
            let m = a - 0x3800_0000
            return UInt16(sign | ((m + 0xfff + ((m >> 13) & 1)) >> 13))
        }
        if a <= 0x3300_0000 { return UInt16(sign) }                                   // <= 2^-25: zero
        let e = a >> 23, mantissa = (a & 0x7f_ffff) | 0x80_0000, shift = 126 - e       // subnormal
        let q = mantissa >> shift, rest = mantissa & ((1 << shift) - 1), half: UInt32 = 1 << (shift - 1)
        return UInt16(sign | (q + ((rest > half || (rest == half && q & 1 == 1)) ? 1 : 0)))
    }

    static func bf16Value(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    static func fp16Value(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16, e = UInt32(h >> 10) & 0x1f, m = UInt32(h & 0x3ff)
        if e == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (m << 13)) }
        if e == 0 { let v = Float(m) * 0x1p-24; return sign != 0 ? -v : v }
        return Float(bitPattern: sign | ((e + 112) << 23) | (m << 13))
    }

    /// `f` rounded to `precision` (FP32: unchanged).
    static func round(_ f: Float, to precision: Precision) -> Float {
        switch precision {
        case .fp32: f
        case .bf16: bf16Value(bf16Bits(f))
        case .fp16: fp16Value(fp16Bits(f))
        }
    }
}

public enum CUDAPrecisionChecks {
    /// The checks, run on the backend under test (they produce nothing at FP32).
    public static var checks: [KernelCheck] {
        [
            KernelCheck("cross-device precision gemm") { try gemm($0) },
            KernelCheck("cross-device precision conv2d") { try convolution($0) },
        ]
    }

    /// Half the smallest positive subnormal: the absolute error of rounding a tiny value.
    static func underflowStep(_ precision: Precision) -> Double {
        switch precision {
        case .fp32: 0x1p-150
        case .bf16: 0x1p-134
        case .fp16: 0x1p-25
        }
    }

    /// The error bound of one output element that sums `terms` products `a * b`, with inputs
    /// `|a|, |b| <= maxAbsInput` each rounded to `precision` (unit roundoff u, relative error u
    /// plus an absolute underflow step), the products (exact in FP32: 8 + 8 or 11 + 11 bits)
    /// summed in FP32 in any order (gamma_k of FP32), and, if `outputRounded`, the sum rounded
    /// once to the format. `absProducts` is `sum |a| * |b|` of the exact inputs, `result` the
    /// exact sum. The stored value is then multiplied by `scale` and combined in FP32 with
    /// terms of total magnitude `fp32After` (alpha and beta of a GEMM, a bias, an accumulated
    /// gradient): two FP32 roundings of that magnitude.
    static func allowance(_ precision: Precision, terms: Int, absProducts: Double, result: Double,
                          outputRounded: Bool, maxAbsInput: Double = 1, scale: Double = 1, fp32After: Double = 0) -> Double {
        let u = precision.unitRoundoff, u32 = 0x1p-24, eta = underflowStep(precision), k = Double(terms)
        let inputs = (2 * u + u * u) * absProducts + eta * (1 + u) * 2 * k * maxAbsInput + k * eta * eta
        let gamma = k * u32 / (1 - k * u32)
        let sum = inputs + gamma * (absProducts + inputs)
        let stored = outputRounded ? sum + u * (abs(result) + sum) + eta : sum
        return abs(scale) * stored + 2 * u32 * fp32After
    }

    /// The bound of (2): inputs already rounded (exact), FP32 accumulation, the optional output rounding.
    static func accumulationAllowance(_ precision: Precision, terms: Int, absProducts: Double, result: Double,
                                      outputRounded: Bool, scale: Double = 1, fp32After: Double = 0) -> Double {
        let u = precision.unitRoundoff, u32 = 0x1p-24, k = Double(terms)
        let gamma = k * u32 / (1 - k * u32)
        let sum = gamma * absProducts
        let stored = outputRounded ? sum + u * (abs(result) + sum) + underflowStep(precision) : sum
        return abs(scale) * stored + 2 * u32 * fp32After
    }

    /// Element by element `|actual - expected| <= allowance`; the result's tolerance shows the
    /// worst element's allowance as atol.
    static func compare(_ name: String, actual: [Float], expected: [Double], allowance: [Double]) -> CheckResult {
        bounded(name, actual, expected, allowance)
    }

    /// The CPU reference of (3): the CPU backend in `precision` where it has it (bf16), else its
    /// FP32 (whose own bound is then the FP32 one); the label says which.
    static func cpuReference(_ precision: Precision) -> (backend: Backend, precision: Precision, label: String)? {
        guard precision == .bf16 else { return nil }
        do {
            return (try BackendFactory.make(.cpu, precision: .bf16), .bf16, "vs cpu bf16")
        } catch {
            return (CPUBackend(), .fp32, "vs cpu fp32 (cpu bf16 unavailable: \(error))")
        }
    }

    static func rounded(_ values: [Double], _ precision: Precision) -> [Double] {
        values.map { Double(ReducedRounding.round(Float($0), to: precision)) }
    }

    // MARK: GEMM

    static func gemm(_ b: Backend) throws -> [CheckResult] {
        let p = b.precision
        guard p != .fp32 else { return [] }
        let cpu = cpuReference(p)
        var out: [CheckResult] = []
        let (alpha, beta) = (0.5, -1.0)
        for (m, n, k, batch) in [(33, 17, 129, 1), (8, 40, 576, 1), (16, 24, 72, 3)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] where batch == 1 || (!ta && tb) {
                let seed = UInt64(m * 1000 + k + (ta ? 7 : 0) + (tb ? 13 : 0))
                let aShape = batch > 1 ? [batch * m, k] : ta ? [k, m] : [m, k]
                let bShape = batch > 1 ? [batch * n, k] : tb ? [n, k] : [k, n]
                let a = checkInput(aShape.reduce(1, *), seed: seed), bv = checkInput(bShape.reduce(1, *), seed: seed + 1)
                let c0 = checkInput(batch * m * n, seed: seed + 2)
                func run(_ backend: Backend) throws -> [Float] {
                    let ta2 = try backend.tensor(a, shape: aShape), tb2 = try backend.tensor(bv, shape: bShape)
                    let c = try backend.tensor(c0, shape: [batch * m, n])
                    if batch > 1 {
                        backend.gemmBatched(transposeA: false, transposeB: true, m: m, n: n, k: k, batch: batch,
                                            alpha: Float(alpha), a: ta2, b: tb2, beta: Float(beta), c: c)
                    } else {
                        backend.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: Float(alpha), a: ta2, b: tb2,
                                     beta: Float(beta), c: c)
                    }
                    return try backend.download(c)
                }
                // Float64 references per batch member: exact, of the rounded inputs, and of |a| |b|.
                func reference(_ a: [Double], _ bv: [Double], alpha: Double, beta: Double, c: [Double]) -> [Double] {
                    (0..<batch).flatMap { g -> [Double] in
                        let ga = Array(a[(g * m * k)..<((g + 1) * m * k)]), gb = Array(bv[(g * n * k)..<((g + 1) * n * k)])
                        let gc = Array(c[(g * m * n)..<((g + 1) * m * n)])
                        return referenceGemm(transposeA: batch > 1 ? false : ta, transposeB: batch > 1 ? true : tb,
                                             m: m, n: n, k: k, alpha: alpha, a: ga, b: gb, beta: beta, c: gc)
                    }
                }
                let zero = [Double](repeating: 0, count: c0.count)
                let exactSum = reference(a, bv, alpha: 1, beta: 0, c: zero)
                let roundedSum = reference(rounded(a, p), rounded(bv, p), alpha: 1, beta: 0, c: zero)
                let absSum = reference(a.map(abs), bv.map(abs), alpha: 1, beta: 0, c: zero)
                let exact = zip(exactSum, c0).map { alpha * $0 + beta * $1 }
                let fromRounded = zip(roundedSum, c0).map { alpha * $0 + beta * $1 }
                func after(_ i: Int, _ sum: Double) -> Double { abs(alpha * sum) + abs(beta * c0[i]) + abs(alpha * sum + beta * c0[i]) }
                let name = batch > 1 ? "gemmBatched \(batch) x NT \(m)x\(n)x\(k) \(p.rawValue)"
                    : "gemm \(ta ? "T" : "N")\(tb ? "T" : "N") \(m)x\(n)x\(k) \(p.rawValue)"
                let actual = try run(b)
                out.append(compare("\(name) vs float64 (format bound)", actual: actual, expected: exact,
                                   allowance: exact.indices.map {
                                       allowance(p, terms: k, absProducts: absSum[$0], result: exactSum[$0], outputRounded: false,
                                                 scale: alpha, fp32After: after($0, exactSum[$0]))
                                   }))
                out.append(compare("\(name) vs float64 of inputs rounded to \(p.rawValue) (FP32 accumulation)",
                                   actual: actual, expected: fromRounded,
                                   allowance: exact.indices.map {
                                       accumulationAllowance(p, terms: k, absProducts: absSum[$0] * 1.01, result: roundedSum[$0],
                                                             outputRounded: false, scale: alpha, fp32After: after($0, roundedSum[$0]))
                                   }))
                if let cpu {
                    let expected = try run(cpu.backend).map(Double.init)
                    out.append(compare("\(name) \(cpu.label)", actual: actual, expected: expected,
                                       allowance: exact.indices.map {
                                           allowance(p, terms: k, absProducts: absSum[$0], result: exactSum[$0], outputRounded: false,
                                                     scale: alpha, fp32After: after($0, exactSum[$0]))
                                           + allowance(cpu.precision, terms: k, absProducts: absSum[$0], result: exactSum[$0],
                                                       outputRounded: cpu.precision != .fp32, scale: alpha,
                                                       fp32After: after($0, exactSum[$0]))
                                       }))
                }
            }
        }
        return out
    }

    // MARK: Convolutions

    static let convolutionShapes = [
        ConvGeometry(batch: 4, inChannels: 3, height: 9, width: 9, outChannels: 8, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(batch: 3, inChannels: 16, height: 8, width: 8, outChannels: 32, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(batch: 2, inChannels: 16, height: 7, width: 7, outChannels: 8, kernel: 1, stride: 2, padding: 0),
        ConvGeometry(batch: 2, inChannels: 16, height: 6, width: 6, outChannels: 16, kernel: 3, stride: 1, padding: 1, groups: 2),
    ]

    static func convolution(_ b: Backend) throws -> [CheckResult] {
        let p = b.precision
        guard p != .fp32 else { return [] }
        let cpu = cpuReference(p)
        var out: [CheckResult] = []
        for (s, g) in convolutionShapes.enumerated() {
            let seed = UInt64(500 + 10 * s)
            let x = checkInput(g.inputShape.reduce(1, *), seed: seed), w = checkInput(g.weightShape.reduce(1, *), seed: seed + 1)
            let bias = checkInput(g.outChannels, seed: seed + 2), dy = checkInput(g.outputShape.reduce(1, *), seed: seed + 3)
            let dw0 = checkInput(w.count, seed: seed + 4)
            // Terms per output element: forward Cin/G*KH*KW; backward-data at most Cout/G*KH*KW;
            // backward-filter N*OH*OW.
            let kForward = g.inChannels / g.groups * g.kernelH * g.kernelW
            let kData = g.outChannels / g.groups * g.kernelH * g.kernelW
            let kFilter = g.batch * g.outHeight * g.outWidth

            // The three directions on one backend: y (with bias), dx, and dw accumulated onto dw0.
            func run(_ backend: Backend) throws -> [[Float]] {
                let tx = try backend.tensor(x, shape: g.inputShape), tw = try backend.tensor(w, shape: g.weightShape)
                let tb = try backend.tensor(bias, shape: [g.outChannels]), tdy = try backend.tensor(dy, shape: g.outputShape)
                let y = try backend.allocate(g.outputShape), dx = try backend.allocate(g.inputShape)
                let dw = try backend.tensor(dw0, shape: g.weightShape)
                backend.conv2dForward(g, input: tx, weight: tw, bias: tb, output: y)
                backend.conv2dBackwardData(g, gradOutput: tdy, weight: tw, gradInput: dx)
                backend.conv2dBackwardFilter(g, input: tx, gradOutput: tdy, gradWeight: dw, mode: .accumulate)
                return [try backend.download(y), try backend.download(dx), try backend.download(dw)]
            }
            // Exact sums, sums of the rounded inputs, sums of |terms|, per direction.
            func sums(_ x: [Double], _ w: [Double], _ dy: [Double]) -> [[Double]] {
                let back = referenceConvolutionBackward(g, dy: dy, x: x, w: w)
                return [referenceConvolution(g, x: x, w: w, bias: nil), back.dx, back.dw]
            }
            let exact = sums(x, w, dy), fromRounded = sums(rounded(x, p), rounded(w, p), rounded(dy, p))
            let absolute = sums(x.map(abs), w.map(abs), dy.map(abs))
            let terms = [kForward, kData, kFilter]
            // What FP32 adds after the widening: the bias (forward), dw0 (backward-filter).
            func added(_ d: Int, _ i: Int) -> Double {
                d == 0 ? bias[(i / (g.outHeight * g.outWidth)) % g.outChannels] : d == 2 ? dw0[i] : 0
            }
            let labels = ["forward+bias", "backward-data", "backward-filter accumulate"]
            let actual = try run(b)
            let expectedCPU = try cpu.map { try run($0.backend) }
            for d in 0..<3 {
                let name = "conv2d \(g) \(labels[d]) \(p.rawValue)"
                let want = exact[d].indices.map { exact[d][$0] + added(d, $0) }
                let wantRounded = fromRounded[d].indices.map { fromRounded[d][$0] + added(d, $0) }
                func bound(_ precision: Precision, _ i: Int, outputRounded: Bool) -> Double {
                    allowance(precision, terms: terms[d], absProducts: absolute[d][i], result: exact[d][i],
                              outputRounded: outputRounded, fp32After: abs(exact[d][i]) + abs(added(d, i)) + abs(want[i]))
                }
                out.append(compare("\(name) vs float64 (format bound)", actual: actual[d], expected: want,
                                   allowance: want.indices.map { bound(p, $0, outputRounded: true) }))
                out.append(compare("\(name) vs float64 of inputs rounded to \(p.rawValue) (FP32 accumulation, result rounded once)",
                                   actual: actual[d], expected: wantRounded,
                                   allowance: want.indices.map {
                                       accumulationAllowance(p, terms: terms[d], absProducts: absolute[d][$0] * 1.01,
                                                             result: fromRounded[d][$0], outputRounded: true,
                                                             fp32After: abs(fromRounded[d][$0]) + abs(added(d, $0)) + abs(wantRounded[$0]))
                                   }))
                if let cpu, let expectedCPU {
                    out.append(compare("\(name) \(cpu.label)", actual: actual[d], expected: expectedCPU[d].map(Double.init),
                                       allowance: want.indices.map {
                                           bound(p, $0, outputRounded: true) + bound(cpu.precision, $0, outputRounded: cpu.precision != .fp32)
                                       }))
                }
            }
        }
        return out
    }
}
