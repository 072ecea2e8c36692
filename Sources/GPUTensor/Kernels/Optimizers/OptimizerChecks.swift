#if canImport(Glibc)
import Glibc
#endif

// The Optimizers family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// Optimizer updates, one tensor and multi-tensor.
    static var optimizerKernels: [KernelCheck] {
        [
            KernelCheck("optimizer sgd", run: sgd),
            KernelCheck("optimizer rmsprop", run: rmsprop),
            KernelCheck("optimizer adam", run: adam),
            KernelCheck("optimizer multi-tensor", run: multiTensor),
        ]
    }

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
}

extension CrossDevice {
    static func optimizers(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let n = 4099, shape = [n]
        let p = input(shape, seed: 700), g = input(shape, seed: 701), s1 = input(shape, seed: 702, low: 0, high: 1)
        let s2 = input(shape, seed: 703, low: 0, high: 1)
        var out: [CheckResult] = []
        for nesterov in [false, true] {
            out += try pair("sgd momentum nesterov=\(nesterov)", b, r, inputs: [g], outputs: [shape, shape],
                            initial: [p.values, s1.values], tolerance: float) { be, t, o in
                for _ in 0..<3 {
                    be.sgdUpdate(parameter: o[0], gradient: t[0], velocity: o[1], learningRate: 0.1, momentum: 0.9,
                                 weightDecay: 5e-4, nesterov: nesterov)
                }
            }
        }
        out += try pair("rmsprop momentum", b, r, inputs: [g], outputs: [shape, shape, shape],
                        initial: [p.values, s2.values, s1.values], tolerance: float) { be, t, o in
            be.rmspropUpdate(parameter: o[0], gradient: t[0], squareAverage: o[1], momentumBuffer: o[2],
                             learningRate: 0.01, alpha: 0.99, epsilon: 1e-8, momentum: 0.9, weightDecay: 1e-4)
        }
        for decoupled in [false, true] {
            out += try pair("adam decoupled=\(decoupled)", b, r, inputs: [g], outputs: [shape, shape, shape],
                            initial: [p.values, s1.values, s2.values], tolerance: float) { be, t, o in
                for step in 1...3 {
                    be.adamUpdate(parameter: o[0], gradient: t[0], firstMoment: o[1], secondMoment: o[2],
                                  learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01,
                                  decoupled: decoupled, step: step)
                }
            }
        }
        return out
    }
}
