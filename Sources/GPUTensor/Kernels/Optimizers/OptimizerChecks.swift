#if canImport(Glibc)
import Glibc
#endif

// Checks for elementwise kernels, reductions, Philox random kernels, dropout, optimizer updates,
// augmentation and the option-A shortcut. Conventions as in LayerKernelChecks.swift.

extension KernelChecks {
    /// Elementwise, reductions, random fills, dropout, optimizer updates, augmentation, shortcut.
    static var utilityKernels: [KernelCheck] {
        var checks = [
            KernelCheck("elementwise", run: UtilityChecks.elementwise),
            KernelCheck("reduction sum", run: UtilityChecks.sum),
            KernelCheck("argmax", run: UtilityChecks.argmax),
            KernelCheck("batch slots (sum, correct count)", run: UtilityChecks.batchSlots),
            KernelCheck("random fill", run: UtilityChecks.randomFills),
            KernelCheck("dropout", run: UtilityChecks.dropout),
            KernelCheck("optimizer sgd", run: UtilityChecks.sgd),
            KernelCheck("optimizer rmsprop", run: UtilityChecks.rmsprop),
            KernelCheck("optimizer adam", run: UtilityChecks.adam),
            KernelCheck("optimizer multi-tensor", run: UtilityChecks.multiTensor),
            KernelCheck("augment crop-flip", run: UtilityChecks.randomCropFlip),
            KernelCheck("augment normalize", run: UtilityChecks.normalize),
            KernelCheck("shortcut option A", run: UtilityChecks.shortcut),
        ]
        #if CUDA
        checks.append(KernelCheck("cuda graph replay", run: CUDAGraphChecks.replay))
        #endif
        return checks
    }
}

enum UtilityChecks {
    typealias F = CheckFixtures

    /// One float32 rounding of the result (plus denormal-sized slack).
    static let oneRounding = Tolerance(atol: 1e-12, rtol: 1.2e-7)

    // MARK: Elementwise

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

    /// `sum(_:into:slot:)` and `countCorrect` write their slot only, agree with `sum` and with a
    /// host count over `argmax`, and carry a NaN or an infinity through (divergence detection).
    static func batchSlots(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let slots = try b.tensor([Float](repeating: -7, count: 6), shape: [6])
        var expected = [Double](repeating: -7, count: 6)
        for (k, n) in [1, 128, 1000].enumerated() {
            let x = checkInput(n, seed: 820 + UInt64(k), low: -1, high: 3)
            let t = try b.tensor(x, shape: [n])
            b.sum(t, into: slots, slot: k)
            expected[k] = Double(try b.sum(t))
        }
        var bad = checkInput(64, seed: 830, low: 0, high: 1)
        bad[17] = .nan
        b.sum(try b.tensor(bad, shape: [64]), into: slots, slot: 3)
        bad[17] = .infinity
        b.sum(try b.tensor(bad, shape: [64]), into: slots, slot: 4)
        let got = try b.download(slots)
        out.append(compare("sum into slots 0-2 (= sum), slot 5 untouched", actual: [got[0], got[1], got[2], got[5]],
                           expected: [expected[0], expected[1], expected[2], -7],
                           tolerance: Tolerance(atol: 1e-6, rtol: 2.4e-7)))
        out.append(compare("sum into slot: NaN and +inf carried through",
                           actual: [got[3].isNaN ? 1 : 0, got[4] == .infinity ? 1 : 0], expected: [1, 1],
                           tolerance: F.exact))
        for (k, (rows, cols)) in [(5, 7), (1, 1), (300, 10)].enumerated() {
            var x = checkInput(rows * cols, seed: 840 + UInt64(k), low: 0, high: 4).map { $0.rounded(.down) }
            if cols > 1 { x[cols - 1] = 5; x[0] = 5 }   // a tie: the first maximum counts
            let labels = (0..<rows).map { i in Float((i * 7 + k) % cols) }
            var labelsT = labels
            labelsT[0] = 0   // row 0's first maximum is column 0
            var correct = 0
            for i in 0..<rows {
                var best = x[i * cols], at = 0
                for j in 1..<cols where x[i * cols + j] > best { best = x[i * cols + j]; at = j }
                if Float(at) == labelsT[i] { correct += 1 }
            }
            let counts = try b.tensor([Float](repeating: -1, count: 3), shape: [3])
            b.countCorrect(logits: try b.tensor(x, shape: [rows, cols]), labels: try b.tensor(labelsT, shape: [rows]),
                           into: counts, slot: 1)
            out.append(compare("countCorrect \(rows)x\(cols) into slot 1 of 3", actual: try b.download(counts),
                               expected: [-1, Double(correct), -1], tolerance: F.exact))
        }
        return out
    }

    // MARK: Random

    static func meanAndStd(_ v: [Float]) -> (Double, Double) {
        let m = v.reduce(0.0) { $0 + Double($1) } / Double(v.count)
        let q = v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count - 1)
        return (m, q.squareRoot())
    }

    static func randomFills(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let seed: UInt64 = 0x5EED_0123_4567, counter: UInt64 = 0x1_0000_0003
        // Counts that end in every lane of a Philox block; the last is big enough for statistics.
        for n in [1, 6, 7, 1025, 100_003] {
            let (low, high) = (Float(-2), Float(3))
            let t = try F.garbage(b, [n])
            b.fillUniform(t, low: low, high: high, seed: seed, counter: counter)
            let u = try b.download(t)
            let ref = (0..<n).map { Double(low) + Double(high - low) * Double(Philox.uniform(seed: seed, counter: counter, index: $0)) }
            // low + (high - low) * u in float32: two roundings (one if fused) of values below 3.
            out.append(compare("fillUniform [-2, 3) \(n) vs Philox.uniform", actual: u, expected: ref,
                               tolerance: Tolerance(atol: 5e-7, rtol: 0)))
            let (mean, std) = (Float(0.5), Float(2))
            b.fillNormal(t, mean: mean, std: std, seed: seed, counter: counter)
            let z = try b.download(t)
            let nref = (0..<n).map { Double(mean) + Double(std) * Double(Philox.normal(seed: seed, counter: counter, index: $0)) }
            out.append(compare("fillNormal (0.5, 2) \(n) vs Philox.normal", actual: z, expected: nref,
                               tolerance: Tolerance(atol: 1e-6, rtol: 2.4e-7)))
            guard n > 10_000 else { continue }
            // Statistics, about 5 standard errors wide for n = 100003.
            let (um, us) = meanAndStd(u), (zm, zs) = meanAndStd(z)
            let inRange = u.allSatisfy { $0 >= low && $0 < high }
            out.append(compare("fillUniform [-2, 3) \(n) mean, std", actual: [Float(um), Float(us)],
                               expected: [0.5, 5 / 12.0.squareRoot()], tolerance: Tolerance(atol: 0.025, rtol: 0)))
            out.append(compare("fillUniform [-2, 3) \(n) all in [low, high)", actual: [inRange ? 1 : 0], expected: [1],
                               tolerance: F.exact))
            out.append(compare("fillNormal (0.5, 2) \(n) mean, std", actual: [Float(zm), Float(zs)],
                               expected: [0.5, 2], tolerance: Tolerance(atol: 0.03, rtol: 0)))
            // Another counter gives another stream, and a view at an offset restarts at element 0.
            let other = try b.allocate([n])
            b.fillUniform(other, low: low, high: high, seed: seed, counter: counter + 1)
            let same = zip(u, try b.download(other)).filter { $0 == $1 }.count
            out.append(compare("fillUniform \(n) counter+1 differs (equal elements / n)",
                               actual: [Float(same) / Float(n)], expected: [0], tolerance: Tolerance(atol: 1e-3, rtol: 0)))
            let slice = other.slice(13..<40)
            b.fillUniform(slice, low: low, high: high, seed: seed, counter: counter)
            out.append(compare("fillUniform view at offset 13, 27 elements", actual: try b.download(slice),
                               expected: Array(ref[0..<27]), tolerance: Tolerance(atol: 5e-7, rtol: 0)))
        }
        return out
    }

    static func dropout(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, (shape, p)) in [([2, 3, 5, 7], Float(0.3)), ([1001], Float(0.5)), ([9], Float(0)), ([100_003], Float(0.2))]
            .enumerated() {
            let n = shape.reduce(1, *), name = "\(F.shapeName(shape)) p \(p)"
            let seed = UInt64(1000 + k), counter = UInt64(77 + k)
            let x = checkInput(n, seed: seed), r = checkInput(n, seed: seed + 100)
            let keep = 1 / (1 - Double(p))
            let mask = (0..<n).map { Philox.uniform(seed: seed, counter: counter, index: $0) >= p ? keep : 0 }
            let xt = try b.tensor(x, shape: shape), yt = try F.garbage(b, shape), mt = try F.garbage(b, shape)
            b.dropoutForward(xt, output: yt, mask: mt, probability: p, seed: seed, counter: counter)
            let m = try b.download(mt)
            // The kernel rounds 1/(1-p) to float32 once.
            out.append(compare("dropoutForward mask \(name)", actual: m, expected: mask, tolerance: oneRounding))
            out.append(compare("dropoutForward y \(name)", actual: try b.download(yt),
                               expected: zip(x, mask).map(*), tolerance: Tolerance(atol: 1e-12, rtol: 2.4e-7)))
            if n > 10_000 {
                let dropped = Double(m.filter { $0 == 0 }.count) / Double(n)
                out.append(compare("dropoutForward dropped fraction \(name)", actual: [Float(dropped)], expected: [Double(p)],
                                   tolerance: Tolerance(atol: 0.01, rtol: 0)))
                continue
            }
            let dy = try b.tensor(r, shape: shape), dx = try F.garbage(b, shape)
            b.dropoutBackward(gradOutput: dy, mask: mt, gradInput: dx)
            let fd = finiteDifferenceGradient(at: x) { xs in dot(zip(xs, mask).map(*), r) }
            out.append(compare("dropoutBackward dx \(name)", actual: try b.download(dx), expected: fd,
                               tolerance: Tolerance(atol: 1e-7, rtol: 1e-6)))
        }
        return out
    }

    // MARK: Optimizers

    /// Runs `steps` updates with fresh gradients and compares parameter and state with a float64
    /// replay of the documented rule. `kernel` applies one step to tensors (p, g, state...);
    /// `reference` applies one step in float64 to (p, g, state...) at element level.
    static func optimizerCheck(_ b: Backend, name: String, stateCount: Int, steps: Int = 3, seed: UInt64,
                               tolerance: Tolerance,
                               kernel: (_ step: Int, _ p: Tensor, _ g: Tensor, _ state: [Tensor]) -> Void,
                               reference: (_ step: Int, _ p: inout Double, _ g: Double, _ state: inout [Double]) -> Void)
        throws -> [CheckResult] {
        let n = 37
        var p = checkInput(n, seed: seed)
        var state = [[Double]](repeating: [Double](repeating: 0, count: stateCount), count: n)
        let pt = try b.tensor(p, shape: [n])
        let st = try (0..<stateCount).map { _ in try b.allocate([n]) }
        for step in 1...steps {
            let g = checkInput(n, seed: seed + UInt64(step), awayFromZero: 0.05)
            kernel(step, pt, try b.tensor(g, shape: [n]), st)
            for i in 0..<n { reference(step, &p[i], g[i], &state[i]) }
        }
        var out = [compare("\(name) parameter after \(steps) steps (\(n))", actual: try b.download(pt), expected: p,
                           tolerance: tolerance)]
        for s in 0..<stateCount {
            out.append(compare("\(name) state \(s) after \(steps) steps (\(n))", actual: try b.download(st[s]),
                               expected: state.map { $0[s] }, tolerance: tolerance))
        }
        return out
    }

    // Parameters ~1, 3 steps of a few float32 roundings each.
    static let optimizerTol = Tolerance(atol: 2e-6, rtol: 1e-5)

    static func sgd(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let lr = 0.1
        for (k, (momentum, wd, nesterov)) in [(0.0, 0.0, false), (0.0, 0.01, false), (0.9, 0.0, false), (0.9, 5e-4, true)]
            .enumerated() {
            let name = "sgdUpdate lr \(lr) momentum \(momentum) wd \(wd)" + (nesterov ? " nesterov" : "")
            let m = Double(Float(momentum)), w = Double(Float(wd)), l = Double(Float(lr))
            out += try optimizerCheck(b, name: name, stateCount: momentum == 0 ? 0 : 1, seed: 1100 + UInt64(10 * k),
                                      tolerance: optimizerTol,
                kernel: { _, p, g, s in
                    b.sgdUpdate(parameter: p, gradient: g, velocity: s.first, learningRate: Float(lr),
                                momentum: Float(momentum), weightDecay: Float(wd), nesterov: nesterov)
                },
                reference: { _, p, grad, s in
                    let g = grad + w * p
                    guard m != 0 else { p -= l * g; return }
                    s[0] = m * s[0] + g
                    p -= l * (nesterov ? g + m * s[0] : s[0])
                })
        }
        return out
    }

    static func rmsprop(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let lr = 0.01, alpha = 0.99, eps = 1e-8
        for (k, (momentum, wd)) in [(0.0, 0.0), (0.9, 0.01)].enumerated() {
            let name = "rmspropUpdate lr \(lr) alpha \(alpha) momentum \(momentum) wd \(wd)"
            let (l, a, e, m, w) = (Double(Float(lr)), Double(Float(alpha)), Double(Float(eps)),
                                   Double(Float(momentum)), Double(Float(wd)))
            out += try optimizerCheck(b, name: name, stateCount: momentum == 0 ? 1 : 2, seed: 1200 + UInt64(10 * k),
                                      tolerance: optimizerTol,
                kernel: { _, p, g, s in
                    b.rmspropUpdate(parameter: p, gradient: g, squareAverage: s[0], momentumBuffer: s.count > 1 ? s[1] : nil,
                                    learningRate: Float(lr), alpha: Float(alpha), epsilon: Float(eps),
                                    momentum: Float(momentum), weightDecay: Float(wd))
                },
                reference: { _, p, grad, s in
                    let g = grad + w * p
                    s[0] = a * s[0] + (1 - a) * g * g
                    let d = g / (s[0].squareRoot() + e)
                    if m != 0 { s[1] = m * s[1] + d; p -= l * s[1] } else { p -= l * d }
                })
        }
        return out
    }

    static func adam(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8
        for (k, (wd, decoupled)) in [(0.0, false), (0.01, false), (0.05, true)].enumerated() {
            let name = (decoupled ? "adamUpdate AdamW" : "adamUpdate Adam") + " lr \(lr) wd \(wd)"
            let (l, b1, b2, e, w) = (Double(Float(lr)), Double(Float(beta1)), Double(Float(beta2)), Double(Float(eps)),
                                     Double(Float(wd)))
            out += try optimizerCheck(b, name: name, stateCount: 2, seed: 1300 + UInt64(10 * k), tolerance: optimizerTol,
                kernel: { step, p, g, s in
                    b.adamUpdate(parameter: p, gradient: g, firstMoment: s[0], secondMoment: s[1], learningRate: Float(lr),
                                 beta1: Float(beta1), beta2: Float(beta2), epsilon: Float(eps), weightDecay: Float(wd),
                                 decoupled: decoupled, step: step)
                },
                reference: { step, p, grad, s in
                    var g = grad
                    if decoupled { p *= 1 - l * w } else { g += w * p }
                    s[0] = b1 * s[0] + (1 - b1) * g
                    s[1] = b2 * s[1] + (1 - b2) * g * g
                    let c1 = 1 - pow(b1, Double(step)), c2 = 1 - pow(b2, Double(step))
                    p -= (l / c1) * s[0] / (s[1].squareRoot() / c2.squareRoot() + e)
                })
        }
        return out
    }

    /// The multi-tensor steps (`MultiTensorOptimizerKernels`: one launch for many tensors)
    /// against the same backend's per-tensor updates, bit for bit, over tensors of different
    /// sizes (70,001 elements: two chunks) with their own learning rates; nothing on a backend
    /// without them.
    static func multiTensor(_ b: Backend) throws -> [CheckResult] {
        guard let multi = b as? MultiTensorOptimizerKernels else { return [] }
        let counts = [37, 1, 70_001, 5]
        let exact = Tolerance(atol: 1e-30, rtol: 0)
        var out: [CheckResult] = []
        func tensors(_ seed: UInt64, squared: Bool = false) throws -> (one: [Tensor], each: [Tensor]) {
            let values = counts.enumerated().map { t, n in
                checkInput(n, seed: seed + UInt64(t)).map { Float(squared ? $0 * $0 : $0) }
            }
            return (try values.map { try b.tensor($0, shape: [$0.count]) }, try values.map { try b.tensor($0, shape: [$0.count]) })
        }
        func compareAll(_ name: String, _ multiple: [Tensor], _ single: [Tensor]) throws {
            for (t, (m, s)) in zip(multiple, single).enumerated() {
                out.append(compare("\(name) tensor \(t) (\(counts[t]))", actual: try b.download(m),
                                   expected: try b.download(s).map(Double.init), tolerance: exact))
            }
        }
        let rates = counts.indices.map { 0.05 * Float($0 + 1) }
        for (k, (momentum, nesterov)) in [(Float(0), false), (0.9, true)].enumerated() {
            let p = try tensors(1500 + UInt64(10 * k)), v = try tensors(1550 + UInt64(10 * k))
            for step in 1...2 {
                let g = try counts.enumerated().map { t, n in try b.tensor(checkInput(n, seed: 1600 + UInt64(10 * step + t)).map(Float.init), shape: [n]) }
                multi.sgdUpdateAll(counts.indices.map { (p.one[$0], g[$0], momentum == 0 ? nil : v.one[$0], rates[$0]) },
                                   momentum: momentum, weightDecay: 5e-4, nesterov: nesterov)
                for t in counts.indices {
                    b.sgdUpdate(parameter: p.each[t], gradient: g[t], velocity: momentum == 0 ? nil : v.each[t],
                                learningRate: rates[t], momentum: momentum, weightDecay: 5e-4, nesterov: nesterov)
                }
            }
            let name = "sgdUpdateAll momentum \(momentum)" + (nesterov ? " nesterov" : "")
            try compareAll(name + " parameter", p.one, p.each)
            if momentum != 0 { try compareAll(name + " velocity", v.one, v.each) }
        }
        for (k, decoupled) in [false, true].enumerated() {
            let p = try tensors(1700 + UInt64(10 * k)), m = try tensors(1750 + UInt64(10 * k))
            let v = try tensors(1780 + UInt64(10 * k), squared: true)
            for step in 1...2 {
                let g = try counts.enumerated().map { t, n in try b.tensor(checkInput(n, seed: 1800 + UInt64(10 * step + t)).map(Float.init), shape: [n]) }
                multi.adamUpdateAll(counts.indices.map { (p.one[$0], g[$0], m.one[$0], v.one[$0], rates[$0] / 10) },
                                    beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, decoupled: decoupled, step: step)
                for t in counts.indices {
                    b.adamUpdate(parameter: p.each[t], gradient: g[t], firstMoment: m.each[t], secondMoment: v.each[t],
                                 learningRate: rates[t] / 10, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01,
                                 decoupled: decoupled, step: step)
                }
            }
            let name = decoupled ? "adamUpdateAll AdamW" : "adamUpdateAll Adam"
            try compareAll(name + " parameter", p.one, p.each)
            try compareAll(name + " first moment", m.one, m.each)
            try compareAll(name + " second moment", v.one, v.each)
        }
        return out
    }

    // MARK: Augmentation

    /// The documented crop/flip formula, evaluated independently of any backend code.
    static func cropFlipReference(_ x: [Double], shape: [Int], padding: Int, allowFlip: Bool,
                                  seed: UInt64, counter: UInt64) -> [Double] {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var y = [Double](repeating: 0, count: x.count)
        for img in 0..<n {
            let u = (0..<3).map { Double(Philox.uniform(seed: seed, counter: counter, index: 3 * img + $0)) }
            let oy = Int((u[0] * Double(2 * padding + 1)).rounded(.down)) - padding
            let ox = Int((u[1] * Double(2 * padding + 1)).rounded(.down)) - padding
            let flip = allowFlip && u[2] < 0.5
            for ch in 0..<c {
                for i in 0..<h {
                    for j in 0..<w {
                        let si = i + oy, sj = (flip ? w - 1 - j : j) + ox
                        guard si >= 0 && si < h && sj >= 0 && sj < w else { continue }
                        y[((img * c + ch) * h + i) * w + j] = x[((img * c + ch) * h + si) * w + sj]
                    }
                }
            }
        }
        return y
    }

    static func randomCropFlip(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, (shape, padding, flip)) in [([3, 2, 8, 8], 4, true), ([2, 3, 7, 5], 1, false), ([2, 1, 4, 6], 0, true),
                                             ([5, 3, 9, 9], 2, true)].enumerated() {
            let n = shape.reduce(1, *), seed = UInt64(1400 + k), counter = UInt64(9 + k)
            let x = checkInput(n, seed: seed, low: 0.1, high: 1)   // nonzero, so padding shows
            let yt = try F.garbage(b, shape)
            b.randomCropFlip(try b.tensor(x, shape: shape), output: yt, padding: padding, allowFlip: flip,
                             seed: seed, counter: counter)
            out.append(compare("randomCropFlip \(F.shapeName(shape)) pad \(padding) flip \(flip)", actual: try b.download(yt),
                               expected: cropFlipReference(x, shape: shape, padding: padding, allowFlip: flip,
                                                           seed: seed, counter: counter),
                               tolerance: F.exact))
        }
        // Offsets and flips decoded from the kernel's own output over many images: pixel (i, j)
        // holds 1 + i*W + j, and the centre pixel is inside the image for any offset in -4...4.
        let (images, side, padding) = (2000, 12, 4)
        let plane = (0..<(side * side)).map { Float(1 + $0) }
        let xs = try b.allocate([images, 1, side, side])
        b.upload(Array([[Float]](repeating: plane, count: images).joined()), to: xs)
        let ys = try F.garbage(b, [images, 1, side, side])
        b.randomCropFlip(xs, output: ys, padding: padding, allowFlip: true, seed: 42, counter: 1)
        let y = try b.download(ys)
        var seenY = Set<Int>(), seenX = Set<Int>(), flips = 0, decodeErrors = 0
        for img in 0..<images {
            let c = 6, base = img * side * side
            let v0 = Int(y[base + c * side + c]) - 1, v1 = Int(y[base + c * side + c + 1]) - 1
            let (si, sj) = (v0 / side, v0 % side)
            let flipped = v1 == v0 - 1
            if !flipped && v1 != v0 + 1 { decodeErrors += 1 }
            if flipped { flips += 1 }
            seenY.insert(si - c)
            seenX.insert(sj - (flipped ? side - 1 - c : c))
        }
        let all = Array(-padding...padding)
        out.append(compare("randomCropFlip \(images)x1x\(side)x\(side) pad 4 decodable offsets", actual: [Float(decodeErrors)],
                           expected: [0], tolerance: F.exact))
        out.append(compare("randomCropFlip \(images)x1x\(side)x\(side) pad 4 vertical offsets are exactly -4...4",
                           actual: seenY.sorted().map(Float.init), expected: seenY.count == all.count ? all.map(Double.init)
                               : [Double](repeating: .nan, count: seenY.count), tolerance: F.exact))
        out.append(compare("randomCropFlip \(images)x1x\(side)x\(side) pad 4 horizontal offsets are exactly -4...4",
                           actual: seenX.sorted().map(Float.init), expected: seenX.count == all.count ? all.map(Double.init)
                               : [Double](repeating: .nan, count: seenX.count), tolerance: F.exact))
        // 2000 fair coins: standard error 0.011.
        out.append(compare("randomCropFlip \(images) images flip fraction", actual: [Float(flips) / Float(images)],
                           expected: [0.5], tolerance: Tolerance(atol: 0.05, rtol: 0)))
        return out
    }

    static func normalize(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, shape) in [[2, 3, 5, 5], [1, 1, 3, 3], [4, 3]].enumerated() {
            let n = shape.reduce(1, *), ch = shape[1], seed = UInt64(1500 + 10 * k)
            let hw = shape.count == 4 ? shape[2] * shape[3] : 1
            let x = checkInput(n, seed: seed, low: 0, high: 1)
            let mean = checkInput(ch, seed: seed + 1, low: 0.3, high: 0.6).map { Float($0) }
            let std = checkInput(ch, seed: seed + 2, low: 0.2, high: 0.3).map { Float($0) }
            let expected = (0..<n).map { i in (x[i] - Double(mean[(i / hw) % ch])) / Double(std[(i / hw) % ch]) }
            let yt = try F.garbage(b, shape)
            b.normalizeChannels(try b.tensor(x, shape: shape), output: yt, mean: mean, std: std)
            // Subtraction and division: two roundings, the difference may cancel to ~1e-8.
            out.append(compare("normalizeChannels \(F.shapeName(shape))", actual: try b.download(yt), expected: expected,
                               tolerance: Tolerance(atol: 1e-6, rtol: 2.4e-7)))
        }
        return out
    }

    // MARK: Shortcut

    static func shortcutReference(_ x: [Double], xShape: [Int], yShape: [Int], stride: Int, channelOffset: Int) -> [Double] {
        let (n, cin, h, w) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (cout, oh, ow) = (yShape[1], yShape[2], yShape[3])
        var y = [Double](repeating: 0, count: yShape.reduce(1, *))
        for img in 0..<n {
            for c in 0..<cin {
                for i in 0..<oh {
                    for j in 0..<ow {
                        y[((img * cout + c + channelOffset) * oh + i) * ow + j] = x[((img * cin + c) * h + i * stride) * w + j * stride]
                    }
                }
            }
        }
        return y
    }

    static func shortcut(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (k, (xShape, cout, stride, offset)) in [([2, 3, 7, 7], 8, 2, 2), ([1, 4, 6, 6], 4, 1, 0), ([1, 4, 6, 6], 8, 1, 3),
                                                    ([3, 2, 5, 4], 5, 2, 1), ([2, 16, 8, 8], 32, 2, 8),
                                                    ([2, 3, 6, 6], 3, 2, 0)].enumerated() {   // a pruned stage: stride, no new channels
            let yShape = [xShape[0], cout, (xShape[2] + stride - 1) / stride, (xShape[3] + stride - 1) / stride]
            let name = "\(F.shapeName(xShape)) -> \(F.shapeName(yShape)) stride \(stride) offset \(offset)"
            let x = checkInput(xShape.reduce(1, *), seed: 1600 + UInt64(k))
            let r = checkInput(yShape.reduce(1, *), seed: 1610 + UInt64(k))
            let xt = try b.tensor(x, shape: xShape), yt = try F.garbage(b, yShape)
            b.shortcutPadForward(xt, output: yt, stride: stride, channelOffset: offset)
            let y = try b.download(yt)
            out.append(compare("shortcutPadForward \(name)", actual: y,
                               expected: shortcutReference(x, xShape: xShape, yShape: yShape, stride: stride,
                                                           channelOffset: offset), tolerance: F.exact))
            let dx = try F.garbage(b, xShape)
            b.shortcutPadBackward(gradOutput: try b.tensor(r, shape: yShape), gradInput: dx, stride: stride, channelOffset: offset)
            let g = try b.download(dx)
            let fd = finiteDifferenceGradient(at: x) {
                dot(shortcutReference($0, xShape: xShape, yShape: yShape, stride: stride, channelOffset: offset), r)
            }
            out.append(compare("shortcutPadBackward dx \(name)", actual: g, expected: fd,
                               tolerance: Tolerance(atol: 1e-7, rtol: 1e-6)))
            // Adjointness of the two kernels themselves: <fwd(x), r> = <x, bwd(r)>.
            let lhs = dot(y.map(Double.init), r), rhs = dot(x, g.map(Double.init))
            out.append(compare("shortcutPad adjointness <fwd x, r> = <x, bwd r> \(name)", actual: [Float(lhs)],
                               expected: [rhs], tolerance: Tolerance(atol: 1e-5, rtol: 1e-6)))
        }
        return out
    }
}
