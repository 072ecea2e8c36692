#if canImport(Glibc)
import Glibc
#endif

// The BatchNorm family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// Batch norm, plain and fused with ReLU.
    static var batchNormKernels: [KernelCheck] {
        [
            KernelCheck("batchnorm", run: batchNorm),
            // Named apart from "batchnorm" and "relu", so that a filter for either runs its own family.
            KernelCheck("bn+ReLU fused", run: batchNormReLU),
        ]
    }

    /// Training-mode batch norm in float64: output, batch mean, biased and unbiased variance.
    static func batchNormReference(_ x: [Double], shape: [Int], gamma: [Double], beta: [Double], epsilon: Double)
        -> (y: [Double], mean: [Double], biased: [Double], unbiased: [Double]) {
        let (n, ch, hw) = F.nchw(shape)
        let m = Double(n * hw)
        var y = x, mean = [Double](repeating: 0, count: ch)
        var biased = mean, unbiased = mean
        for c in 0..<ch {
            var s = 0.0
            for i in 0..<n { for k in 0..<hw { s += x[(i * ch + c) * hw + k] } }
            let mu = s / m
            var q = 0.0
            for i in 0..<n { for k in 0..<hw { let d = x[(i * ch + c) * hw + k] - mu; q += d * d } }
            mean[c] = mu; biased[c] = q / m; unbiased[c] = q / (m - 1)
            let inv = 1 / (biased[c] + epsilon).squareRoot()
            for i in 0..<n {
                for k in 0..<hw {
                    let idx = (i * ch + c) * hw + k
                    y[idx] = (x[idx] - mu) * inv * gamma[c] + beta[c]
                }
            }
        }
        return (y, mean, biased, unbiased)
    }

    /// One batch-norm check's inputs (seeded from `seed`): x with mean ~1 and spread ~1.2 (a
    /// one-pass E[x^2] - E[x]^2 in float32 would already show), gamma, beta, running statistics,
    /// the backward's dy (`r`), the float64 reference, and their tensors on the backend; the saved
    /// statistics start as garbage.
    struct BatchNormCase {
        let shape: [Int], ch: Int, count: Int, hw: Int
        let x, gamma, beta, rm0, rv0, r: [Double]
        let ref: (y: [Double], mean: [Double], biased: [Double], unbiased: [Double])
        let xt, gt, bt, rmt, rvt, smt, sit: Tensor

        init(_ b: Backend, shape: [Int], seed s: UInt64, epsilon: Double) throws {
            self.shape = shape
            count = shape.reduce(1, *)
            ch = shape[1]
            hw = F.nchw(shape).2
            x = checkInput(count, seed: s, low: -1, high: 3)
            gamma = checkInput(ch, seed: s + 1, low: 0.5, high: 1.5)
            // beta around zero: with a ReLU after it, about half of the normalised values are cut.
            beta = checkInput(ch, seed: s + 2, low: -0.5, high: 0.5)
            rm0 = checkInput(ch, seed: s + 3, low: -0.2, high: 0.2)
            rv0 = checkInput(ch, seed: s + 4, low: 0.5, high: 1.5)
            r = checkInput(count, seed: s + 5)
            ref = batchNormReference(x, shape: shape, gamma: gamma, beta: beta, epsilon: epsilon)
            xt = try b.tensor(x, shape: shape)
            gt = try b.tensor(gamma, shape: [ch])
            bt = try b.tensor(beta, shape: [ch])
            rmt = try b.tensor(rm0, shape: [ch])
            rvt = try b.tensor(rv0, shape: [ch])
            smt = try F.garbage(b, [ch])
            sit = try F.garbage(b, [ch])
        }

        /// The inference forward with the initial running statistics, in float64, + `residual`
        /// (per element) and through `activation`.
        func inferenceReference(epsilon eps: Double, adding residual: [Double]? = nil,
                                _ activation: (Double) -> Double = { $0 }) -> [Double] {
            (0..<count).map { idx in
                let c = (idx / hw) % ch
                return activation((x[idx] - rm0[c]) / (rv0[c] + eps).squareRoot() * gamma[c] + beta[c] + (residual?[idx] ?? 0))
            }
        }

        /// Central differences of `dot(transform(reference y), r)` in x, gamma and beta.
        func finiteDifferences(epsilon eps: Double, _ transform: @escaping ([Double]) -> [Double] = { $0 })
            -> (x: [Double], gamma: [Double], beta: [Double]) {
            let loss = { (x: [Double], g: [Double], be: [Double]) in
                dot(transform(batchNormReference(x, shape: shape, gamma: g, beta: be, epsilon: eps).y), r)
            }
            return (finiteDifferenceGradient(at: x) { loss($0, gamma, beta) },
                    finiteDifferenceGradient(at: gamma) { loss(x, $0, beta) },
                    finiteDifferenceGradient(at: beta) { loss(x, gamma, $0) })
        }
    }

    static func batchNorm(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let eps = 1e-5, momentum = 0.1
        // y is (x - mean) * gamma/std + beta with |y| up to ~3: a few float32 roundings.
        let forwardTol = Tolerance(atol: 2e-6, rtol: 1e-5)
        let statTol = Tolerance(atol: 1e-7, rtol: 2e-6)
        // dx cancels three terms of size ~gamma*invStd*|dy|; dgamma and dbeta are sums of <= 50 terms.
        let dxTol = Tolerance(atol: 2e-6, rtol: 1e-5)
        let paramGradTol = Tolerance(atol: 2e-6, rtol: 1e-5)
        for (k, shape) in [[2, 3, 5, 5], [1, 2, 3, 3], [3, 1, 4, 4], [5, 4], [2, 3]].enumerated() {
            let s = UInt64(500 + 10 * k), name = F.shapeName(shape)
            let t = try BatchNormCase(b, shape: shape, seed: s, epsilon: eps)
            let (ch, rm0, rv0, r, ref) = (t.ch, t.rm0, t.rv0, t.r, t.ref)
            let (xt, gt, bt, rmt, rvt, smt, sit) = (t.xt, t.gt, t.bt, t.rmt, t.rvt, t.smt, t.sit)
            let yt = try F.garbage(b, shape)
            b.batchNormForwardTraining(input: xt, output: yt, gamma: gt, beta: bt, runningMean: rmt, runningVar: rvt,
                                       saveMean: smt, saveInvStd: sit, momentum: Float(momentum), epsilon: Float(eps))
            out.append(compare("batchNormForwardTraining y \(name)", actual: try b.download(yt), expected: ref.y,
                               tolerance: forwardTol))
            out.append(compare("batchNormForwardTraining saveMean \(name)", actual: try b.download(smt),
                               expected: ref.mean, tolerance: statTol))
            out.append(compare("batchNormForwardTraining saveInvStd (biased var) \(name)", actual: try b.download(sit),
                               expected: ref.biased.map { 1 / ($0 + eps).squareRoot() }, tolerance: statTol))
            out.append(compare("batchNormForwardTraining runningMean \(name)", actual: try b.download(rmt),
                               expected: (0..<ch).map { (1 - momentum) * rm0[$0] + momentum * ref.mean[$0] },
                               tolerance: statTol))
            out.append(compare("batchNormForwardTraining runningVar (unbiased) \(name)", actual: try b.download(rvt),
                               expected: (0..<ch).map { (1 - momentum) * rv0[$0] + momentum * ref.unbiased[$0] },
                               tolerance: statTol))

            // Inference with the running statistics the training call did not touch (rm0, rv0).
            let irm = try b.tensor(rm0, shape: [ch]), irv = try b.tensor(rv0, shape: [ch]), iy = try F.garbage(b, shape)
            b.batchNormForwardInference(input: xt, output: iy, gamma: gt, beta: bt, runningMean: irm, runningVar: irv,
                                        epsilon: Float(eps))
            out.append(compare("batchNormForwardInference y \(name)", actual: try b.download(iy),
                               expected: t.inferenceReference(epsilon: eps), tolerance: forwardTol))

            // Backward of the training forward, against FD of dot(reference y, r).
            let (fdX, fdGamma, fdBeta) = t.finiteDifferences(epsilon: eps)
            let dy = try b.tensor(r, shape: shape), dx = try F.garbage(b, shape)
            let dg = try F.garbage(b, [ch]), db = try F.garbage(b, [ch])
            b.batchNormBackward(input: xt, gradOutput: dy, gamma: gt, saveMean: smt, saveInvStd: sit,
                                gradInput: dx, gradGamma: dg, gradBeta: db, mode: .overwrite, epsilon: Float(eps))
            out.append(compare("batchNormBackward dx \(name)", actual: try b.download(dx), expected: fdX, tolerance: dxTol))
            out.append(compare("batchNormBackward dgamma overwrite \(name)", actual: try b.download(dg),
                               expected: fdGamma, tolerance: paramGradTol))
            out.append(compare("batchNormBackward dbeta overwrite \(name)", actual: try b.download(db),
                               expected: fdBeta, tolerance: paramGradTol))

            let g0 = checkInput(ch, seed: s + 6), b0 = checkInput(ch, seed: s + 7)
            let dga = try b.tensor(g0, shape: [ch]), dba = try b.tensor(b0, shape: [ch]), dx2 = try F.garbage(b, shape)
            b.batchNormBackward(input: xt, gradOutput: dy, gamma: gt, saveMean: smt, saveInvStd: sit,
                                gradInput: dx2, gradGamma: dga, gradBeta: dba, mode: .accumulate, epsilon: Float(eps))
            out.append(compare("batchNormBackward dx (accumulate call) \(name)", actual: try b.download(dx2),
                               expected: fdX, tolerance: dxTol))
            out.append(compare("batchNormBackward dgamma accumulate \(name)", actual: try b.download(dga),
                               expected: zip(g0, fdGamma).map(+), tolerance: paramGradTol))
            out.append(compare("batchNormBackward dbeta accumulate \(name)", actual: try b.download(dba),
                               expected: zip(b0, fdBeta).map(+), tolerance: paramGradTol))
        }
        return out
    }

    /// The fused batch norm + ReLU: forwards against `max(reference, 0)` in float64, the backward
    /// against central differences of `dot(max(reference y, 0), r)` (the inputs keep every
    /// normalised value well away from ReLU's kink at these steps), and each output against the
    /// unfused composition on the same backend (`batchNorm*` then `relu*`).
    static func batchNormReLU(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let eps = 1e-5, momentum = 0.1
        let forwardTol = Tolerance(atol: 2e-6, rtol: 1e-5), statTol = Tolerance(atol: 1e-7, rtol: 2e-6)
        let gradTol = Tolerance(atol: 2e-6, rtol: 1e-5)
        func relu(_ v: [Double]) -> [Double] { v.map { max($0, 0) } }
        for (k, shape) in [[2, 3, 5, 5], [3, 2, 4, 4], [6, 4], [4, 9]].enumerated() {
            let s = UInt64(700 + 10 * k), name = F.shapeName(shape)
            let t = try BatchNormCase(b, shape: shape, seed: s, epsilon: eps)
            let (count, ch, rm0, rv0, r, ref) = (t.count, t.ch, t.rm0, t.rv0, t.r, t.ref)
            let (xt, gt, bt, rmt, rvt, smt, sit) = (t.xt, t.gt, t.bt, t.rmt, t.rvt, t.smt, t.sit)
            let yt = try F.garbage(b, shape)
            b.batchNormReLUForwardTraining(input: xt, output: yt, gamma: gt, beta: bt, runningMean: rmt, runningVar: rvt,
                                           saveMean: smt, saveInvStd: sit, momentum: Float(momentum), epsilon: Float(eps))
            let y = try b.download(yt)
            out.append(compare("batchNormReLUForwardTraining y \(name)", actual: y, expected: relu(ref.y), tolerance: forwardTol))
            out.append(compare("batchNormReLUForwardTraining saveMean \(name)", actual: try b.download(smt),
                               expected: ref.mean, tolerance: statTol))
            out.append(compare("batchNormReLUForwardTraining saveInvStd \(name)", actual: try b.download(sit),
                               expected: ref.biased.map { 1 / ($0 + eps).squareRoot() }, tolerance: statTol))
            out.append(compare("batchNormReLUForwardTraining runningVar \(name)", actual: try b.download(rvt),
                               expected: (0..<ch).map { (1 - momentum) * rv0[$0] + momentum * ref.unbiased[$0] },
                               tolerance: statTol))

            // The unfused composition on this backend.
            let uy = try F.garbage(b, shape), urm = try b.tensor(rm0, shape: [ch]), urv = try b.tensor(rv0, shape: [ch])
            let usm = try F.garbage(b, [ch]), usi = try F.garbage(b, [ch])
            b.batchNormForwardTraining(input: xt, output: uy, gamma: gt, beta: bt, runningMean: urm, runningVar: urv,
                                       saveMean: usm, saveInvStd: usi, momentum: Float(momentum), epsilon: Float(eps))
            b.reluForward(uy, output: uy)
            out.append(compare("batchNormReLUForwardTraining y vs unfused \(name)", actual: y,
                               expected: try b.download(uy).map(Double.init), tolerance: forwardTol))

            let iy = try F.garbage(b, shape), uiy = try F.garbage(b, shape)
            let irm = try b.tensor(rm0, shape: [ch]), irv = try b.tensor(rv0, shape: [ch])
            b.batchNormReLUForwardInference(input: xt, output: iy, gamma: gt, beta: bt, runningMean: irm, runningVar: irv,
                                            epsilon: Float(eps))
            out.append(compare("batchNormReLUForwardInference y \(name)", actual: try b.download(iy),
                               expected: t.inferenceReference(epsilon: eps) { max($0, 0) }, tolerance: forwardTol))
            b.batchNormForwardInference(input: xt, output: uiy, gamma: gt, beta: bt, runningMean: irm, runningVar: irv,
                                        epsilon: Float(eps))
            b.reluForward(uiy, output: uiy)
            out.append(compare("batchNormReLUForwardInference y vs unfused \(name)", actual: try b.download(iy),
                               expected: try b.download(uiy).map(Double.init), tolerance: forwardTol))

            // Backward, the mask from the fused forward's own output yt.
            let (fdX, fdGamma, fdBeta) = t.finiteDifferences(epsilon: eps, relu)
            let dy = try b.tensor(r, shape: shape), dx = try F.garbage(b, shape)
            let dg = try F.garbage(b, [ch]), db = try F.garbage(b, [ch])
            b.batchNormReLUBackward(input: xt, output: yt, gradOutput: dy, gamma: gt, beta: bt, saveMean: smt, saveInvStd: sit,
                                    gradInput: dx, gradGamma: dg, gradBeta: db, mode: .overwrite, epsilon: Float(eps))
            let dxv = try b.download(dx)
            out.append(compare("batchNormReLUBackward dx \(name)", actual: dxv, expected: fdX, tolerance: gradTol))
            out.append(compare("batchNormReLUBackward dgamma overwrite \(name)", actual: try b.download(dg),
                               expected: fdGamma, tolerance: gradTol))
            out.append(compare("batchNormReLUBackward dbeta overwrite \(name)", actual: try b.download(db),
                               expected: fdBeta, tolerance: gradTol))

            let g0 = checkInput(ch, seed: s + 6), b0 = checkInput(ch, seed: s + 7)
            let dy2 = try b.tensor(r, shape: shape), dx2 = try F.garbage(b, shape)
            let dga = try b.tensor(g0, shape: [ch]), dba = try b.tensor(b0, shape: [ch])
            b.batchNormReLUBackward(input: xt, output: yt, gradOutput: dy2, gamma: gt, beta: bt, saveMean: smt, saveInvStd: sit,
                                    gradInput: dx2, gradGamma: dga, gradBeta: dba, mode: .accumulate, epsilon: Float(eps))
            out.append(compare("batchNormReLUBackward dgamma accumulate \(name)", actual: try b.download(dga),
                               expected: zip(g0, fdGamma).map(+), tolerance: gradTol))
            out.append(compare("batchNormReLUBackward dbeta accumulate \(name)", actual: try b.download(dba),
                               expected: zip(b0, fdBeta).map(+), tolerance: gradTol))

            // Unfused: reluBackward, then batchNormBackward.
            let udy = try b.tensor(r, shape: shape), udx = try F.garbage(b, shape)
            let udg = try F.garbage(b, [ch]), udb = try F.garbage(b, [ch])
            b.reluBackward(output: uy, gradOutput: udy, gradInput: udy)
            b.batchNormBackward(input: xt, gradOutput: udy, gamma: gt, saveMean: usm, saveInvStd: usi,
                                gradInput: udx, gradGamma: udg, gradBeta: udb, mode: .overwrite, epsilon: Float(eps))
            out.append(compare("batchNormReLUBackward dx vs unfused \(name)", actual: dxv,
                               expected: try b.download(udx).map(Double.init), tolerance: gradTol))
            out.append(compare("batchNormReLUBackward dgamma vs unfused \(name)", actual: try b.download(dg),
                               expected: try b.download(udg).map(Double.init), tolerance: gradTol))

            // + residual before the ReLU (the end of a basic block): forwards against float64 and
            // against batchNorm*, add, reluForward on this backend.
            let res = checkInput(count, seed: s + 8)
            let rt = try b.tensor(res, shape: shape), ay = try F.garbage(b, shape), uay = try F.garbage(b, shape)
            let arm = try b.tensor(rm0, shape: [ch]), arv = try b.tensor(rv0, shape: [ch])
            let asm = try F.garbage(b, [ch]), asi = try F.garbage(b, [ch])
            b.batchNormAddReLUForwardTraining(input: xt, residual: rt, output: ay, gamma: gt, beta: bt, runningMean: arm,
                                              runningVar: arv, saveMean: asm, saveInvStd: asi, momentum: Float(momentum),
                                              epsilon: Float(eps))
            out.append(compare("batchNormAddReLUForwardTraining y \(name)", actual: try b.download(ay),
                               expected: relu(zip(ref.y, res).map(+)), tolerance: forwardTol))
            out.append(compare("batchNormAddReLUForwardTraining runningVar \(name)", actual: try b.download(arv),
                               expected: (0..<ch).map { (1 - momentum) * rv0[$0] + momentum * ref.unbiased[$0] },
                               tolerance: statTol))
            out.append(compare("batchNormAddReLUForwardTraining saveInvStd \(name)", actual: try b.download(asi),
                               expected: ref.biased.map { 1 / ($0 + eps).squareRoot() }, tolerance: statTol))
            b.batchNormForwardTraining(input: xt, output: uay, gamma: gt, beta: bt, runningMean: urm, runningVar: urv,
                                       saveMean: usm, saveInvStd: usi, momentum: Float(momentum), epsilon: Float(eps))
            b.add(uay, rt, output: uay)
            b.reluForward(uay, output: uay)
            out.append(compare("batchNormAddReLUForwardTraining y vs unfused \(name)", actual: try b.download(ay),
                               expected: try b.download(uay).map(Double.init), tolerance: forwardTol))
            let aiy = try F.garbage(b, shape)
            b.batchNormAddReLUForwardInference(input: xt, residual: rt, output: aiy, gamma: gt, beta: bt, runningMean: irm,
                                               runningVar: irv, epsilon: Float(eps))
            out.append(compare("batchNormAddReLUForwardInference y \(name)", actual: try b.download(aiy),
                               expected: t.inferenceReference(epsilon: eps, adding: res) { max($0, 0) },
                               tolerance: forwardTol))
        }
        out += try batchNormReLUSpecials(b)
        return out
    }

    /// The fused batch norm + ReLU where its mask matters most: a NaN in one channel's x (that
    /// channel's statistics and every y are NaN, and NaN passes the ReLU as in `reluForward`), a
    /// channel whose normalised values are all negative (y and the mask all zero, so its dx, dgamma
    /// and dbeta are exactly 0), the others random: against float64 (NaN as a finite stand-in), and
    /// forward and backward against the unfused composition on the same backend.
    static func batchNormReLUSpecials(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let eps = 1e-5, tol = Tolerance(atol: 2e-6, rtol: 1e-5)
        func relu(_ v: Double) -> Double { v.isNaN ? v : max(v, 0) }
        for (k, shape) in [[4, 16, 3, 3], [2, 3, 5, 5]].enumerated() {
            let (n, ch, hw) = F.nchw(shape), count = shape.reduce(1, *), name = F.shapeName(shape)
            var x = checkInput(count, seed: 780 + UInt64(k), low: -1, high: 3)
            x[(1 * ch + 0) * hw + hw / 2] = .nan                   // image 1, channel 0
            let gamma = checkInput(ch, seed: 781 + UInt64(k), low: 0.5, high: 1.5)
            var beta = checkInput(ch, seed: 782 + UInt64(k), low: -0.5, high: 0.5)
            beta[ch - 1] = -100                                     // the last channel: all y < 0
            let r = checkInput(count, seed: 783 + UInt64(k))
            let ref = batchNormReference(x, shape: shape, gamma: gamma, beta: beta, epsilon: eps)
            let xt = try b.tensor(x, shape: shape), gt = try b.tensor(gamma, shape: [ch]), bt = try b.tensor(beta, shape: [ch])
            func stats() throws -> [Tensor] { try [F.garbage(b, [ch]), F.garbage(b, [ch]), F.garbage(b, [ch]), F.garbage(b, [ch])] }
            let f = try stats(), u = try stats()
            b.fill(f[0], value: 0); b.fill(f[1], value: 1); b.fill(u[0], value: 0); b.fill(u[1], value: 1)
            let yt = try F.garbage(b, shape), uy = try F.garbage(b, shape)
            b.batchNormReLUForwardTraining(input: xt, output: yt, gamma: gt, beta: bt, runningMean: f[0], runningVar: f[1],
                                           saveMean: f[2], saveInvStd: f[3], momentum: 0.1, epsilon: Float(eps))
            b.batchNormForwardTraining(input: xt, output: uy, gamma: gt, beta: bt, runningMean: u[0], runningVar: u[1],
                                       saveMean: u[2], saveInvStd: u[3], momentum: 0.1, epsilon: Float(eps))
            b.reluForward(uy, output: uy)
            let y = specialsAsFinite(try b.download(yt).map(Double.init))
            out.append(compare("batchNormReLUForwardTraining NaN, all-negative channel \(name)", actual: y.map(Float.init),
                               expected: specialsAsFinite(ref.y.map(relu)), tolerance: tol))
            out.append(compare("batchNormReLUForwardTraining NaN, all-negative channel vs unfused \(name)",
                               actual: y.map(Float.init),
                               expected: specialsAsFinite(try b.download(uy).map(Double.init)), tolerance: tol))

            let dy = try b.tensor(r, shape: shape), udy = try b.tensor(r, shape: shape)
            let dx = try F.garbage(b, shape), udx = try F.garbage(b, shape)
            let g = try stats(), ug = try stats()
            b.batchNormReLUBackward(input: xt, output: yt, gradOutput: dy, gamma: gt, beta: bt, saveMean: f[2], saveInvStd: f[3],
                                    gradInput: dx, gradGamma: g[0], gradBeta: g[1], mode: .overwrite, epsilon: Float(eps))
            b.reluBackward(output: uy, gradOutput: udy, gradInput: udy)
            b.batchNormBackward(input: xt, gradOutput: udy, gamma: gt, saveMean: u[2], saveInvStd: u[3],
                                gradInput: udx, gradGamma: ug[0], gradBeta: ug[1], mode: .overwrite, epsilon: Float(eps))
            let dxv = specialsAsFinite(try b.download(dx).map(Double.init))
            let pairs: [(String, Tensor, Tensor)] = [("dx", dx, udx), ("dgamma", g[0], ug[0]), ("dbeta", g[1], ug[1])]
            for (label, fused, unfused) in pairs {
                let actual: [Double] = specialsAsFinite(try b.download(fused).map(Double.init))
                let expected: [Double] = specialsAsFinite(try b.download(unfused).map(Double.init))
                out.append(compare("batchNormReLUBackward NaN, all-negative channel \(label) vs unfused \(name)",
                                   actual: actual.map(Float.init), expected: expected, tolerance: tol))
            }
            // The all-negative channel: no gradient at all; the NaN channel: dx all NaN.
            let last: [Float] = (0..<n).flatMap { i in (0..<hw).map { Float(dxv[(i * ch + ch - 1) * hw + $0]) } }
            let lastParams: [Float] = [try b.download(g[0])[ch - 1], try b.download(g[1])[ch - 1]]
            out.append(compare("batchNormReLUBackward all-negative channel dx, dgamma, dbeta = 0 \(name)",
                               actual: last + lastParams,
                               expected: [Double](repeating: 0, count: n * hw + 2), tolerance: F.exact))
            let first: [Float] = (0..<n).flatMap { i in (0..<hw).map { Float(dxv[(i * ch) * hw + $0]) } }
            out.append(compare("batchNormReLUBackward NaN channel dx all NaN \(name)", actual: first,
                               expected: [Double](repeating: 0x1p100, count: n * hw), tolerance: F.exact))
        }
        return out
    }
}

extension CrossDevice {
    static func batchNorm(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (s, shape) in [[8, 6, 5, 5], [16, 10]].enumerated() {
            let c = shape[1], seed = UInt64(200 + 10 * s)
            let x = input(shape, seed: seed, low: -1, high: 3), gamma = input([c], seed: seed + 1, low: 0.5, high: 1.5)
            let beta = input([c], seed: seed + 2), dy = input(shape, seed: seed + 3)
            let runMean = input([c], seed: seed + 4).values, runVar = input([c], seed: seed + 5, low: 0.5, high: 2).values
            let name = "batchnorm \(shape)"
            // y, running mean, running var (unbiased), saved mean, saved 1/std.
            out += try pair("\(name) training", b, r, inputs: [x, gamma, beta],
                            outputs: [shape, [c], [c], [c], [c]], initial: [nil, runMean, runVar, nil, nil],
                            tolerance: reduction) { be, t, o in
                be.batchNormForwardTraining(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: o[1],
                                            runningVar: o[2], saveMean: o[3], saveInvStd: o[4], momentum: 0.1, epsilon: 1e-5)
            }
            out += try pair("\(name) inference", b, r, inputs: [x, gamma, beta, (runMean, [c]), (runVar, [c])],
                            outputs: [shape], tolerance: reduction) { be, t, o in
                be.batchNormForwardInference(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: t[3],
                                             runningVar: t[4], epsilon: 1e-5)
            }
            // Backward from the statistics each backend's own forward saved.
            out += try pair("\(name) backward accumulate", b, r, inputs: [x, gamma, beta, dy],
                            outputs: [shape, [c], [c]], initial: [nil, input([c], seed: seed + 6).values, input([c], seed: seed + 7).values],
                            tolerance: reduction) { be, t, o in
                let y = try be.allocate(shape), rm = try be.allocate([c]), rv = try be.allocate([c])
                let sm = try be.allocate([c]), si = try be.allocate([c])
                be.batchNormForwardTraining(input: t[0], output: y, gamma: t[1], beta: t[2], runningMean: rm,
                                            runningVar: rv, saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
                be.batchNormBackward(input: t[0], gradOutput: t[3], gamma: t[1], saveMean: sm, saveInvStd: si,
                                     gradInput: o[0], gradGamma: o[1], gradBeta: o[2], mode: .accumulate, epsilon: 1e-5)
            }
        }
        return out
    }

    /// The fused batch norm + ReLU, each backend's backward from its own fused forward (its
    /// statistics and its ReLU mask).
    static func batchNormReLU(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        for (s, shape) in [[8, 6, 5, 5], [16, 10], [4, 40, 3, 3]].enumerated() {
            let c = shape[1], seed = UInt64(250 + 10 * s)
            let x = input(shape, seed: seed, low: -1, high: 3), gamma = input([c], seed: seed + 1, low: 0.5, high: 1.5)
            let beta = input([c], seed: seed + 2, low: -0.5, high: 0.5), dy = input(shape, seed: seed + 3)
            let runMean = input([c], seed: seed + 4).values, runVar = input([c], seed: seed + 5, low: 0.5, high: 2).values
            let name = "batchnorm+relu \(shape)"
            out += try pair("\(name) training", b, r, inputs: [x, gamma, beta],
                            outputs: [shape, [c], [c], [c], [c]], initial: [nil, runMean, runVar, nil, nil],
                            tolerance: reduction) { be, t, o in
                be.batchNormReLUForwardTraining(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: o[1],
                                                runningVar: o[2], saveMean: o[3], saveInvStd: o[4], momentum: 0.1, epsilon: 1e-5)
            }
            out += try pair("\(name) inference", b, r, inputs: [x, gamma, beta, (runMean, [c]), (runVar, [c])],
                            outputs: [shape], tolerance: reduction) { be, t, o in
                be.batchNormReLUForwardInference(input: t[0], output: o[0], gamma: t[1], beta: t[2], runningMean: t[3],
                                                 runningVar: t[4], epsilon: 1e-5)
            }
            let residual = input(shape, seed: seed + 8)
            out += try pair("\(name) + residual training", b, r, inputs: [x, gamma, beta, residual],
                            outputs: [shape, [c], [c], [c], [c]], initial: [nil, runMean, runVar, nil, nil],
                            tolerance: reduction) { be, t, o in
                be.batchNormAddReLUForwardTraining(input: t[0], residual: t[3], output: o[0], gamma: t[1], beta: t[2],
                                                   runningMean: o[1], runningVar: o[2], saveMean: o[3], saveInvStd: o[4],
                                                   momentum: 0.1, epsilon: 1e-5)
            }
            out += try pair("\(name) + residual inference", b, r, inputs: [x, gamma, beta, (runMean, [c]), (runVar, [c]), residual],
                            outputs: [shape], tolerance: reduction) { be, t, o in
                be.batchNormAddReLUForwardInference(input: t[0], residual: t[5], output: o[0], gamma: t[1], beta: t[2],
                                                    runningMean: t[3], runningVar: t[4], epsilon: 1e-5)
            }
            out += try pair("\(name) backward accumulate", b, r, inputs: [x, gamma, beta, dy],
                            outputs: [shape, [c], [c]], initial: [nil, input([c], seed: seed + 6).values, input([c], seed: seed + 7).values],
                            tolerance: reduction) { be, t, o in
                let y = try be.allocate(shape), rm = try be.allocate([c]), rv = try be.allocate([c])
                let sm = try be.allocate([c]), si = try be.allocate([c])
                be.batchNormReLUForwardTraining(input: t[0], output: y, gamma: t[1], beta: t[2], runningMean: rm,
                                                runningVar: rv, saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
                be.batchNormReLUBackward(input: t[0], output: y, gradOutput: t[3], gamma: t[1], beta: t[2], saveMean: sm, saveInvStd: si,
                                         gradInput: o[0], gradGamma: o[1], gradBeta: o[2], mode: .accumulate, epsilon: 1e-5)
            }
        }
        return out
    }
}
