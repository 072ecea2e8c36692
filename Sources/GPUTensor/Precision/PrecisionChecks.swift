// Checks of a backend computing convolutions and GEMMs in a reduced precision (`--precision bf16`,
// and fp16 for a backend that has it): inputs rounded to the format, FP32 accumulation, FP32 out.
//
// Every result is compared with two float64 references, with bounds derived from the formats
// (nothing tuned), per output element, from that element's own terms:
// - from the inputs rounded to the format (round to nearest even, `Precision.rounded`): the
//   products of two rounded inputs are exact in FP32 (8 + 8 or 11 + 11 significant bits <= 24),
//   so the only error left is FP32 summation, in any order:
//       |y - ref(rounded)| <= (k + 2) * u32 * (|alpha| * sum|a_i * b_i| + |extra|)
//   with k the number of terms, u32 = 2^-24, `extra` what is added in FP32 besides the products
//   (bias, beta * c, the gradient accumulated into). Passing this proves the kernel rounds its
//   inputs to this format, to nearest even, and accumulates in FP32: rounding differently
//   (truncation, TF32's 10 bits, a bf16 output) misses it by orders of magnitude;
// - from the unrounded inputs: each input moves by at most u (2^-8 for bf16) relative, so each
//   product by at most 2u + u^2:
//       |y - ref(unrounded)| <= (2u + u^2 + (k + 2) * u32 * (1 + u)^2) * |alpha| * sum|a_i * b_i| + (k + 2) * u32 * |extra|
//   which is what `--precision` promises a user;
// - and one check per family that must FAIL when the backend silently computed in FP32: on these
//   inputs (24 significant bits, so rounding matters) some element must differ from the unrounded
//   reference by at least 8 times what FP32 summation alone allows. Without it the checks above
//   could pass vacuously on inputs that happen to be representable in the format. It sits on
//   short sums (k <= 288): FP32's worst-case bound grows as k and bf16's error as sqrt(k).

extension Precision {
    /// `x` rounded to this format (to nearest, ties to even), as a kernel computing in it reads it.
    func rounded(_ x: Double) -> Double {
        switch self {
        case .fp32: return Double(Float(x))
        case .bf16: return Double(bf16Rounded(Float(x)))
        case .fp16: return Double(Float(Float16(Float(x))))
        }
    }
}

/// u32: the unit roundoff of FP32 accumulation.
private let fp32Roundoff = Precision.fp32.unitRoundoff

/// The detector's margin: how many times FP32 summation's bound some element must miss the
/// unrounded reference by (random 24-bit inputs miss it by 10^2-10^4).
private let fp32DetectorMargin = 8.0

/// One output of a reduced-precision kernel and everything its bounds are derived from.
private struct PrecisionCase {
    let name: String
    let actual: [Float]
    /// float64 result from the rounded inputs, and from the unrounded ones.
    let fromRounded: [Double], fromUnrounded: [Double]
    /// |alpha| * sum |a_i * b_i| per element, from the rounded and from the unrounded inputs.
    let magnitudeRounded: [Double], magnitudeUnrounded: [Double]
    /// What is added in FP32 besides the products (bias, beta * c, accumulated gradient), per element.
    let extra: [Double]
    /// Terms summed per element, at most (products plus the extra term).
    let terms: Int

    func results(_ precision: Precision, detector: Bool) -> [CheckResult] {
        let u = precision.unitRoundoff, k = Double(terms + 2)
        let accumulation = (0..<actual.count).map { k * fp32Roundoff * (magnitudeRounded[$0] + extra[$0]) }
        let format = (0..<actual.count).map {
            (2 * u + u * u + k * fp32Roundoff * (1 + u) * (1 + u)) * magnitudeUnrounded[$0] + k * fp32Roundoff * extra[$0]
        }
        var out = [
            bounded("\(precision.rawValue) \(name) vs float64 of \(precision.rawValue)-rounded inputs (FP32 summation bound)",
                    actual, fromRounded, accumulation),
            bounded("\(precision.rawValue) \(name) vs float64 of unrounded inputs (\(precision.rawValue) bound)",
                    actual, fromUnrounded, format),
        ]
        if detector {
            // Worst ratio: margin / (largest miss in units of FP32's bound); <= 1 passes.
            let fp32Bound = (0..<actual.count).map { k * fp32Roundoff * (magnitudeUnrounded[$0] + extra[$0]) }
            var largest = 0.0, index = 0
            for i in 0..<actual.count {
                let miss = abs(Double(actual[i]) - fromUnrounded[i]) / fp32Bound[i]
                if !(miss <= largest) { largest = miss; index = i }
            }
            out.append(CheckResult(
                name: "\(precision.rawValue) \(name) is not FP32 (some element misses the unrounded float64 result by >= \(Int(fp32DetectorMargin))x FP32's bound)",
                worstRatio: largest > 0 ? fp32DetectorMargin / largest : .infinity, worstIndex: index,
                actual: actual.isEmpty ? 0 : Double(actual[index]), expected: actual.isEmpty ? 0 : fromUnrounded[index],
                tolerance: Tolerance(atol: fp32Bound.isEmpty ? 0 : fp32Bound[index], rtol: 0)))
        }
        return out
    }
}

/// `|actual - expected| <= bound` element by element (the worst ratio and element reported;
/// the tolerance shown is that element's bound). Used by the CPU and the CUDA precision checks.
func bounded(_ name: String, _ actual: [Float], _ expected: [Double], _ bound: [Double]) -> CheckResult {
    precondition(actual.count == expected.count && actual.count == bound.count, name)
    var worst = 0.0, worstIndex = 0
    for i in 0..<actual.count {
        let diff = abs(Double(actual[i]) - expected[i])
        let ratio = bound[i] > 0 ? diff / bound[i] : (diff == 0 ? 0 : .infinity)
        if !(ratio <= worst) { worst = ratio; worstIndex = i }
        if ratio.isNaN { break }
    }
    return CheckResult(name: name, worstRatio: worst, worstIndex: worstIndex,
                       actual: actual.isEmpty ? 0 : Double(actual[worstIndex]),
                       expected: expected.isEmpty ? 0 : expected[worstIndex],
                       tolerance: Tolerance(atol: bound.isEmpty ? 0 : bound[worstIndex], rtol: 0))
}

public extension KernelChecks {
    /// The convolution and GEMM checks of a backend computing in `precision` (reduced: bf16 or
    /// fp16); see the top of PrecisionChecks.swift for the bounds.
    static func precisionChecks(_ precision: Precision) -> [KernelCheck] {
        [KernelCheck("\(precision.rawValue) gemm") { try precisionGemmChecks($0, precision) },
         KernelCheck("\(precision.rawValue) conv2d") { try precisionConvolutionChecks($0, precision) }]
    }

    /// The shapes: oneDNN's jit/brgconv kernels (channels in multiples of 16), the 3-channel stem,
    /// stride 2, a 1x1 with odd channel counts, and grouped convolutions (trial groups).
    static var precisionConvolutionShapes: [ConvGeometry] {
        [ConvGeometry(batch: 2, inChannels: 16, height: 8, width: 8, outChannels: 32, kernel: 3, stride: 1, padding: 1),
         ConvGeometry(batch: 2, inChannels: 3, height: 9, width: 9, outChannels: 16, kernel: 3, stride: 1, padding: 1),
         ConvGeometry(batch: 2, inChannels: 16, height: 8, width: 7, outChannels: 32, kernel: 3, stride: 2, padding: 1),
         ConvGeometry(batch: 2, inChannels: 5, height: 7, width: 7, outChannels: 7, kernel: 1),
         ConvGeometry(batch: 2, inChannels: 32, height: 6, width: 6, outChannels: 32, kernel: 3, stride: 1, padding: 1, groups: 2),
         ConvGeometry(batch: 1, inChannels: 6, height: 7, width: 7, outChannels: 9, kernel: 3, stride: 2, padding: 1, groups: 3)]
    }
}

extension KernelChecks {
    static func precisionConvolutionChecks(_ backend: Backend, _ precision: Precision) throws -> [CheckResult] {
        var results = [CheckResult]()
        for (index, g) in precisionConvolutionShapes.enumerated() {
            let seed = UInt64(700 + 10 * index)
            let x = checkInput(g.inputShape.reduce(1, *), seed: seed), w = checkInput(g.weightShape.reduce(1, *), seed: seed + 1)
            let dy = checkInput(g.outputShape.reduce(1, *), seed: seed + 2)
            let bias = index % 2 == 0 ? checkInput(g.outChannels, seed: seed + 3) : nil
            let (xr, wr, dyr) = (x.map(precision.rounded), w.map(precision.rounded), dy.map(precision.rounded))
            let (xa, wa, dya) = (x.map(abs), w.map(abs), dy.map(abs))
            let (xra, wra, dyra) = (xr.map(abs), wr.map(abs), dyr.map(abs))
            let xt = try backend.tensor(x, shape: g.inputShape), wt = try backend.tensor(w, shape: g.weightShape)
            let dyt = try backend.tensor(dy, shape: g.outputShape)
            let bt = try bias.map { try backend.tensor($0, shape: [g.outChannels]) }
            // The first plain and the first grouped shape also carry the FP32 detector.
            let detector = index == 0 || index == 4
            let perGroup = g.inChannels / g.groups, outPerGroup = g.outChannels / g.groups

            let yt = try backend.allocate(g.outputShape)
            backend.conv2dForward(g, input: xt, weight: wt, bias: bt, output: yt)
            let biasExtra = (0..<g.outputShape.reduce(1, *)).map { i in
                bias.map { abs($0[(i / (g.outHeight * g.outWidth)) % g.outChannels]) } ?? 0
            }
            results += PrecisionCase(
                name: "conv2d forward\(bias == nil ? "" : " +bias") \(g)", actual: try backend.download(yt),
                fromRounded: referenceConvolution(g, x: xr, w: wr, bias: bias),
                fromUnrounded: referenceConvolution(g, x: x, w: w, bias: bias),
                magnitudeRounded: referenceConvolution(g, x: xra, w: wra, bias: nil),
                magnitudeUnrounded: referenceConvolution(g, x: xa, w: wa, bias: nil),
                extra: biasExtra, terms: perGroup * g.kernelH * g.kernelW + 1).results(precision, detector: detector)

            let rounded = referenceConvolutionBackward(g, dy: dyr, x: xr, w: wr)
            let unrounded = referenceConvolutionBackward(g, dy: dy, x: x, w: w)
            let magRounded = referenceConvolutionBackward(g, dy: dyra, x: xra, w: wra)
            let magUnrounded = referenceConvolutionBackward(g, dy: dya, x: xa, w: wa)

            let dxt = try backend.allocate(g.inputShape)
            backend.conv2dBackwardData(g, gradOutput: dyt, weight: wt, gradInput: dxt)
            results += PrecisionCase(
                name: "conv2d backward-data \(g)", actual: try backend.download(dxt),
                fromRounded: rounded.dx, fromUnrounded: unrounded.dx, magnitudeRounded: magRounded.dx,
                magnitudeUnrounded: magUnrounded.dx, extra: [Double](repeating: 0, count: x.count),
                terms: outPerGroup * g.kernelH * g.kernelW).results(precision, detector: detector)

            // Backward-filter accumulating into a gradient already there (what a shared weight sees).
            let dw0 = checkInput(w.count, seed: seed + 4)
            let dwt = try backend.tensor(dw0, shape: g.weightShape)
            backend.conv2dBackwardFilter(g, input: xt, gradOutput: dyt, gradWeight: dwt, mode: .accumulate)
            results += PrecisionCase(
                name: "conv2d backward-filter accumulate \(g)", actual: try backend.download(dwt),
                fromRounded: zip(dw0, rounded.dw).map(+), fromUnrounded: zip(dw0, unrounded.dw).map(+),
                magnitudeRounded: magRounded.dw, magnitudeUnrounded: magUnrounded.dw, extra: dw0.map(abs),
                terms: g.batch * g.outHeight * g.outWidth + 1).results(precision, detector: detector)
            if index == 0 {
                let dwOver = try backend.allocate(g.weightShape)
                backend.conv2dBackwardFilter(g, input: xt, gradOutput: dyt, gradWeight: dwOver, mode: .overwrite)
                results += PrecisionCase(
                    name: "conv2d backward-filter \(g)", actual: try backend.download(dwOver),
                    fromRounded: rounded.dw, fromUnrounded: unrounded.dw, magnitudeRounded: magRounded.dw,
                    magnitudeUnrounded: magUnrounded.dw, extra: [Double](repeating: 0, count: w.count),
                    terms: g.batch * g.outHeight * g.outWidth).results(precision, detector: false)
            }
        }
        return results
    }

    static func precisionGemmChecks(_ backend: Backend, _ precision: Precision) throws -> [CheckResult] {
        var results = [CheckResult]()
        var seed: UInt64 = 800
        // One GEMM (batch nil) or `batch` stacked ones, against the references of each matrix.
        func check(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, batch: Int?, alpha: Double, beta: Double,
                   detector: Bool) throws {
            seed += 1
            let count = batch ?? 1
            let a = checkInput(count * m * k, seed: seed), b = checkInput(count * k * n, seed: seed + 50)
            let c = checkInput(count * m * n, seed: seed + 90)
            let stack = batch.map { [$0] } ?? []
            let at = try backend.tensor(a, shape: stack + (ta ? [k, m] : [m, k]))
            let bt = try backend.tensor(b, shape: stack + (tb ? [n, k] : [k, n]))
            let ct = try backend.tensor(c, shape: stack + [m, n])
            if let batch {
                backend.gemmBatched(transposeA: ta, transposeB: tb, m: m, n: n, k: k, batch: batch,
                                    alpha: Float(alpha), a: at, b: bt, beta: Float(beta), c: ct)
            } else {
                backend.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k,
                             alpha: Float(alpha), a: at, b: bt, beta: Float(beta), c: ct)
            }
            func reference(_ a: [Double], _ b: [Double], alpha: Double, beta: Double) -> [Double] {
                (0..<count).flatMap { i in
                    referenceGemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha,
                                  a: Array(a[(i * m * k)..<((i + 1) * m * k)]), b: Array(b[(i * k * n)..<((i + 1) * k * n)]),
                                  beta: beta, c: Array(c[(i * m * n)..<((i + 1) * m * n)]))
                }
            }
            let (ar, br) = (a.map(precision.rounded), b.map(precision.rounded))
            func magnitude(_ a: [Double], _ b: [Double]) -> [Double] {   // |alpha| * sum |a_i * b_i|
                reference(a.map(abs), b.map(abs), alpha: abs(alpha), beta: 0)
            }
            let name = "\(batch.map { "gemmBatched \($0) x" } ?? "gemm") \(ta ? "T" : "N")\(tb ? "T" : "N") \(m)x\(n)x\(k) alpha \(alpha) beta \(beta)"
            results += PrecisionCase(
                name: name, actual: try backend.download(ct),
                fromRounded: reference(ar, br, alpha: alpha, beta: beta), fromUnrounded: reference(a, b, alpha: alpha, beta: beta),
                magnitudeRounded: magnitude(ar, br), magnitudeUnrounded: magnitude(a, b),
                extra: c.map { abs(beta * $0) }, terms: k + 1).results(precision, detector: detector)
        }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.5)] {
                try check(ta, tb, 5, 7, 37, batch: nil, alpha: alpha, beta: beta, detector: false)
            }
            try check(ta, tb, 5, 7, 37, batch: 3, alpha: 0.75, beta: 0.5, detector: ta && tb)
        }
        // A dense layer's size (the seed cnn's 10-class head is 128 x 10 x 250).
        try check(false, true, 64, 48, 96, batch: nil, alpha: 1, beta: 0, detector: false)
        // Products large enough for the CPU's bf16 matmul primitive (DNNLMatmulPlan.minimumWork).
        // The detector goes on a short sum: FP32's worst-case bound grows as k, the error of bf16
        // inputs only as sqrt(k), so at k = 1024 FP32's bound no longer separates the two.
        try check(false, true, 256, 256, 64, batch: nil, alpha: 1, beta: 0, detector: true)
        try check(true, false, 96, 64, 700, batch: nil, alpha: -0.5, beta: 1.5, detector: false)
        try check(true, true, 64, 64, 1024, batch: 2, alpha: 0.75, beta: 0.5, detector: false)
        return results
    }
}
