#if canImport(Glibc)
import Glibc
#endif

// The Elementwise family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// Elementwise kernels and reductions.
    static var elementwiseKernels: [KernelCheck] {
        [
            KernelCheck("elementwise", run: elementwise),
            KernelCheck("reduction sum", run: sum),
            KernelCheck("argmax", run: argmax),
        ]
    }

    /// One float32 rounding of the result (plus denormal-sized slack).
    static let oneRounding = Tolerance(atol: 1e-12, rtol: 1.2e-7)

    static func elementwise(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, shape) in [[7], [2, 3, 5, 7], [70_001]].enumerated() {
            let n = shape.reduce(1, *), name = F.shapeName(shape), s = UInt64(700 + 10 * k)
            let a = checkInput(n, seed: s), c = checkInput(n, seed: s + 1, low: -3, high: 2)
            let t = try F.garbage(b, shape)
            b.fill(t, value: -1.5)
            out.append(compare("fill \(name)", actual: try b.download(t), expected: .init(repeating: -1.5, count: n),
                               tolerance: F.exact))
            let at = try b.tensor(a, shape: shape), ct = try b.tensor(c, shape: shape)
            b.add(at, ct, output: t)
            out.append(compare("add \(name)", actual: try b.download(t), expected: zip(a, c).map(+), tolerance: oneRounding))
            b.add(at, ct, output: at)   // out aliasing a
            out.append(compare("add in-place \(name)", actual: try b.download(at), expected: zip(a, c).map(+),
                               tolerance: oneRounding))
            b.scale(ct, by: -0.75, output: t)
            out.append(compare("scale \(name)", actual: try b.download(t), expected: c.map { -0.75 * $0 },
                               tolerance: oneRounding))
            b.scale(ct, by: 0.3, output: ct)
            let c3 = c.map { Double(Float(0.3)) * $0 }
            out.append(compare("scale in-place \(name)", actual: try b.download(ct), expected: c3, tolerance: oneRounding))
            let yt = try b.tensor(a, shape: shape), xt = try b.tensor(c, shape: shape)
            b.axpy(alpha: 2.5, x: xt, y: yt)
            // Two roundings (product and sum) unless fused: allow two ulps of the larger term.
            out.append(compare("axpy \(name)", actual: try b.download(yt), expected: zip(a, c).map { $0 + 2.5 * $1 },
                               tolerance: Tolerance(atol: 1e-6, rtol: 2.4e-7)))
        }
        return out
    }

    static func sum(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, n) in [1, 5, 1000, 100_003].enumerated() {
            let x = checkInput(n, seed: 800 + UInt64(k), low: -1, high: 3)
            let got = try b.sum(try b.tensor(x, shape: [n]))
            let l1 = x.reduce(0) { $0 + abs($1) }
            // The float32 result's own rounding plus a float32 tree reduction's error (~log2(n) ulps).
            out.append(compare("sum \(n)", actual: [got], expected: [x.reduce(0, +)],
                               tolerance: Tolerance(atol: 1e-6 * l1, rtol: 1.2e-7)))
        }
        // 2^24 followed by 4096 ones: a float32 running sum stays at 2^24; the exact sum is representable.
        var big = [Float](repeating: 1, count: 4097)
        big[0] = 16_777_216
        let got = try b.sum(try b.tensor(big, shape: [4097]))
        out.append(compare("sum 2^24 + 4096 ones (accumulator precision)", actual: [got], expected: [16_781_312],
                           tolerance: F.exact))
        return out
    }

    static func argmax(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, (rows, cols)) in [(5, 7), (1, 1), (3, 10), (64, 100)].enumerated() {
            // Values on a coarse grid so rows have ties; the first maximum must win.
            var x = checkInput(rows * cols, seed: 900 + UInt64(k), low: 0, high: 4).map { $0.rounded(.down) }
            if cols > 1 { x[cols - 1] = 5; x[0] = 5 }   // an explicit tie between the ends of row 0
            let expected = (0..<rows).map { i -> Double in
                var best = x[i * cols], at = 0
                for j in 1..<cols where x[i * cols + j] > best { best = x[i * cols + j]; at = j }
                return Double(at)
            }
            let outT = try F.garbage(b, [rows])
            b.argmax(rows: try b.tensor(x, shape: [rows, cols]), output: outT)
            out.append(compare("argmax \(rows)x\(cols) (ties)", actual: try b.download(outT), expected: expected,
                               tolerance: F.exact))
        }
        return out
    }
}

extension CrossDevice {
    static func elementwise(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let n = 70_001
        var out = try pair("fill, add, scale, axpy \(n)", b, r, inputs: [input([n], seed: 500), input([n], seed: 501)],
                           outputs: [[n], [n], [n]], tolerance: float) { be, t, o in
            be.fill(o[0], value: 0.25)
            be.add(t[0], t[1], output: o[1])
            be.scale(t[0], by: -1.5, output: o[2])
            be.axpy(alpha: 0.75, x: t[1], y: o[2])
        }
        out += try pair("sum, argmax", b, r, inputs: [input([n], seed: 502), input([100, 33], seed: 503)],
                        outputs: [[1], [100]], tolerance: float) { be, t, o in
            be.fill(o[0], value: try be.sum(t[0]))
            be.argmax(rows: t[1], output: o[1])
        }
        // Per-batch slots: losses of 128 samples, and a correct count against labels 0..<33.
        let labels = (0..<100).map { Float($0 % 33) }
        out += try pair("sum into slot, countCorrect into slot", b, r,
                        inputs: [input([128], seed: 504), input([100, 33], seed: 505)],
                        outputs: [[4], [4]], tolerance: float) { be, t, o in
            be.fill(o[0], value: 0)
            be.fill(o[1], value: 0)
            be.sum(t[0], into: o[0], slot: 2)
            be.countCorrect(logits: t[1], labels: try be.tensor(labels, shape: [100]), into: o[1], slot: 1)
        }
        return out
    }
}
