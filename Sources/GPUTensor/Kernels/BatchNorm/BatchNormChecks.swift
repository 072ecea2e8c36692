#if canImport(Glibc)
import Glibc
#endif

// Checks for ReLU, pooling, batch norm and softmax cross-entropy.
//
// Forwards are compared with naive float64 references written straight from the `Backend` doc
// comments; backwards with float64 central differences of `L = dot(reference(x), r)` for a random
// upstream gradient r. Every backward writes into a tensor pre-filled with garbage, so "overwrite"
// is checked too. Tolerances are float32 rounding of the kernel's arithmetic with a margin
// (FD error is ~1e-9 at these sizes, far below them).

extension KernelChecks {
    /// ReLU, pooling, batch norm, softmax cross-entropy.
    static var layerKernels: [KernelCheck] {
        [
            KernelCheck("relu", run: LayerChecks.relu),
            KernelCheck("pool2d max", run: LayerChecks.maxPool),
            KernelCheck("pool2d avg", run: LayerChecks.avgPool),
            KernelCheck("global pool avg", run: LayerChecks.globalAvgPool),
            KernelCheck("batchnorm", run: LayerChecks.batchNorm),
            // Named apart from "batchnorm" and "relu", so that a filter for either runs its own family.
            KernelCheck("bn+ReLU fused", run: LayerChecks.batchNormReLU),
            KernelCheck("softmax cross-entropy", run: LayerChecks.softmaxCrossEntropy),
        ]
    }
}

/// Helpers shared by the layer and utility checks.
enum CheckFixtures {
    /// Bitwise equality (for copies, selections and exact integer results).
    static let exact = Tolerance(atol: 1e-30, rtol: 0)

    static func shapeName(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "x") }

    static func poolName(_ g: PoolGeometry) -> String {
        "\(shapeName(g.inputShape)) \(g.window)x\(g.window)/\(g.stride) pad \(g.padding)"
    }

    /// A constant garbage fill, to show that an output is overwritten.
    static func garbage(_ b: Backend, _ shape: [Int]) throws -> Tensor {
        let t = try b.allocate(shape)
        b.fill(t, value: 7.25)
        return t
    }

    static func download(_ b: Backend, _ t: Tensor) throws -> [Float] { try b.download(t) }

    /// Values in [-1, 1) at least 2/n apart (a shuffled ramp), so that no max-pool window has a
    /// near tie a finite-difference step could flip.
    static func distinctInput(_ n: Int, seed: UInt64) -> [Double] {
        let u = checkInput(n, seed: seed)
        let order = (0..<n).sorted { u[$0] < u[$1] || (u[$0] == u[$1] && $0 < $1) }
        var x = [Double](repeating: 0, count: n)
        for (rank, i) in order.enumerated() { x[i] = Double(Float(-1 + 2 * Double(rank) / Double(n))) }
        return x
    }

    /// (N, C, HW) view of a rank-2 or rank-4 shape.
    static func nchw(_ shape: [Int]) -> (n: Int, c: Int, hw: Int) {
        shape.count == 2 ? (shape[0], shape[1], 1) : (shape[0], shape[1], shape[2] * shape[3])
    }
}

enum LayerChecks {
    typealias F = CheckFixtures

    // MARK: ReLU

    static func relu(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let gradTol = Tolerance(atol: 1e-6, rtol: 1e-6)   // dx is dy or 0: exact up to FD error
        for (k, shape) in [[1, 1, 3, 5], [2, 3, 5, 7], [4, 9]].enumerated() {
            let n = shape.reduce(1, *), name = F.shapeName(shape)
            let x = checkInput(n, seed: 100 + UInt64(k), awayFromZero: 0.05)
            let r = checkInput(n, seed: 110 + UInt64(k))
            func ref(_ x: [Double]) -> [Double] { x.map { max($0, 0) } }
            let xt = try b.tensor(x, shape: shape), yt = try F.garbage(b, shape)
            b.reluForward(xt, output: yt)
            out.append(compare("reluForward \(name)", actual: try b.download(yt), expected: ref(x), tolerance: F.exact))
            let inPlace = try b.tensor(x, shape: shape)
            b.reluForward(inPlace, output: inPlace)
            out.append(compare("reluForward in-place \(name)", actual: try b.download(inPlace), expected: ref(x),
                               tolerance: F.exact))

            let fd = finiteDifferenceGradient(at: x) { dot(ref($0), r) }
            let dy = try b.tensor(r, shape: shape), dx = try F.garbage(b, shape)
            b.reluBackward(output: yt, gradOutput: dy, gradInput: dx)
            out.append(compare("reluBackward dx \(name)", actual: try b.download(dx), expected: fd, tolerance: gradTol))
            b.reluBackward(output: yt, gradOutput: dy, gradInput: dy)
            out.append(compare("reluBackward dx aliasing dy \(name)", actual: try b.download(dy), expected: fd,
                               tolerance: gradTol))
        }
        return out
    }

    // MARK: Pooling

    static let poolGeometries = [
        PoolGeometry(batch: 1, channels: 1, height: 5, width: 5, window: 3, stride: 1, padding: 1),
        PoolGeometry(batch: 2, channels: 3, height: 7, width: 7, window: 3, stride: 2, padding: 1),
        PoolGeometry(batch: 2, channels: 2, height: 8, width: 8, window: 2, stride: 2, padding: 0),
        PoolGeometry(batch: 1, channels: 3, height: 7, width: 5, window: 3, stride: 2, padding: 0),
        PoolGeometry(batch: 3, channels: 1, height: 6, width: 6, window: 2, stride: 1, padding: 1),
        // Tiled windows (stride = window, no padding) with rows and columns left over, and enough
        // channels for the vector loops plus a remainder.
        PoolGeometry(batch: 2, channels: 19, height: 9, width: 7, window: 2, stride: 2, padding: 0),
        PoolGeometry(batch: 1, channels: 16, height: 6, width: 8, window: 3, stride: 3, padding: 0),
    ]

    /// More max-pool cases: the models' 2x2/2 and 3x3/2 pad 1 with channels past the vector
    /// loops (not multiples of 8 or 16), 3x3/1, odd sizes.
    static let maxPoolGeometries = [
        PoolGeometry(batch: 2, channels: 21, height: 7, width: 9, window: 3, stride: 2, padding: 1),
        PoolGeometry(batch: 2, channels: 11, height: 5, width: 5, window: 3, stride: 1, padding: 0),
        PoolGeometry(batch: 3, channels: 24, height: 5, width: 5, window: 2, stride: 2, padding: 1),
        PoolGeometry(batch: 1, channels: 35, height: 3, width: 3, window: 3, stride: 1, padding: 1),
    ]

    /// Max (padding = -inf) or average (padding counted as zeros, divisor window²) pooling.
    static func poolReference(_ g: PoolGeometry, _ x: [Double], max isMax: Bool) -> [Double] {
        let (h, w, oh, ow, k) = (g.height, g.width, g.outHeight, g.outWidth, g.window)
        var y = [Double](repeating: 0, count: g.batch * g.channels * oh * ow)
        for plane in 0..<(g.batch * g.channels) {
            for i in 0..<oh {
                for j in 0..<ow {
                    var acc = isMax ? -Double.infinity : 0
                    for di in 0..<k {
                        for dj in 0..<k {
                            let r = i * g.stride - g.padding + di, c = j * g.stride - g.padding + dj
                            guard r >= 0 && r < h && c >= 0 && c < w else { continue }
                            let v = x[plane * h * w + r * w + c]
                            acc = isMax ? Swift.max(acc, v) : acc + v
                        }
                    }
                    y[plane * oh * ow + i * ow + j] = isMax ? acc : acc / Double(k * k)
                }
            }
        }
        return y
    }

    /// Max pooling by the documented rule, per output: the window's first (row-major) maximum,
    /// a NaN being the maximum (the first NaN), padding never chosen. Returns y and, per output,
    /// the index of its input in x.
    static func maxPoolReference(_ g: PoolGeometry, _ x: [Double]) -> (y: [Double], at: [Int]) {
        let (h, w, oh, ow, k) = (g.height, g.width, g.outHeight, g.outWidth, g.window)
        var y = [Double](repeating: 0, count: g.batch * g.channels * oh * ow), at = [Int](repeating: -1, count: y.count)
        for plane in 0..<(g.batch * g.channels) {
            for i in 0..<oh {
                for j in 0..<ow {
                    var best = -Double.infinity, index = -1
                    for di in 0..<k {
                        for dj in 0..<k {
                            let r = i * g.stride - g.padding + di, c = j * g.stride - g.padding + dj
                            guard r >= 0 && r < h && c >= 0 && c < w else { continue }
                            let v = x[plane * h * w + r * w + c]
                            if index < 0 || (!best.isNaN && (v > best || v.isNaN)) { best = v; index = plane * h * w + r * w + c }
                        }
                    }
                    y[plane * oh * ow + i * ow + j] = best
                    at[plane * oh * ow + i * ow + j] = index
                }
            }
        }
        return (y, at)
    }

    /// Max-pool backward by the documented rule (`maxPoolReference`'s positions), for ties and NaN.
    static func maxPoolBackwardReference(_ g: PoolGeometry, _ x: [Double], _ dy: [Double]) -> [Double] {
        var dx = [Double](repeating: 0, count: x.count)
        for (o, index) in maxPoolReference(g, x).at.enumerated() { dx[index] += dy[o] }
        return dx
    }

    /// NaN and infinities as distinct finite stand-ins, so that `compare` checks where they are.
    static func specialsAsFinite(_ v: [Double]) -> [Double] {
        v.map { $0.isNaN ? 0x1p100 : $0 == .infinity ? 0x1p101 : $0 == -.infinity ? -0x1p101 : $0 }   // exact in Float
    }

    /// Max pooling with the window positions its training forward saves (`PoolingKernels`): the
    /// forward against the float64 reference, with and without a workspace; the backward, with the
    /// workspace of the SAME forward, against finite differences (distinct inputs) and against the
    /// documented routing on ties (a constant image), NaN (first NaN wins) and -infinity.
    static func maxPool(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let gradTol = Tolerance(atol: 1e-6, rtol: 1e-5)   // dx: sums of up to 9 float dy values
        for (k, g) in (poolGeometries + maxPoolGeometries).enumerated() {
            let name = F.poolName(g), n = g.inputShape.reduce(1, *), m = g.outputShape.reduce(1, *)
            let workspace = try b.allocateMaxPoolWorkspace(g)
            if let workspace { b.fill(workspace, value: 7.25) }   // garbage: the forward must write it all
            let x = F.distinctInput(n, seed: 200 + UInt64(k))
            let r = checkInput(m, seed: 210 + UInt64(k))
            let xt = try b.tensor(x, shape: g.inputShape), yt = try F.garbage(b, g.outputShape)
            b.maxPoolForward(g, input: xt, output: yt, workspace: nil)
            out.append(compare("maxPoolForward inference \(name)", actual: try b.download(yt),
                               expected: poolReference(g, x, max: true), tolerance: F.exact))
            b.fill(yt, value: 7.25)
            b.maxPoolForward(g, input: xt, output: yt, workspace: workspace)
            out.append(compare("maxPoolForward training \(name)", actual: try b.download(yt),
                               expected: poolReference(g, x, max: true), tolerance: F.exact))
            let dy = try b.tensor(r, shape: g.outputShape), dx = try F.garbage(b, g.inputShape)
            b.maxPoolBackward(g, input: xt, output: yt, workspace: workspace, gradOutput: dy, gradInput: dx)
            let fd = finiteDifferenceGradient(at: x) { dot(poolReference(g, $0, max: true), r) }
            out.append(compare("maxPoolBackward dx \(name)", actual: try b.download(dx), expected: fd, tolerance: gradTol))

            // Special inputs. Ties: a constant negative image (forward must not pick the padding,
            // backward must route every dy to the first element of its window). NaN: scattered, so
            // that some windows hold one or two and the first NaN must win. -infinity everywhere:
            // every dy to the window's first in-image element.
            let nan = x.enumerated().map { $0.offset % 7 == 3 || $0.offset % 11 == 5 ? Double.nan : $0.element }
            for (label, special) in [("constant -0.5", [Double](repeating: -0.5, count: n)), ("NaN", nan),
                                     ("-infinity", [Double](repeating: -.infinity, count: n))] {
                let tt = try b.tensor(special, shape: g.inputShape)
                b.fill(dx, value: 7.25)
                b.maxPoolForward(g, input: tt, output: yt, workspace: workspace)
                out.append(compare("maxPoolForward \(label) \(name)",
                                   actual: specialsAsFinite(try b.download(yt).map(Double.init)).map(Float.init),
                                   expected: specialsAsFinite(maxPoolReference(g, special).y), tolerance: F.exact))
                b.maxPoolBackward(g, input: tt, output: yt, workspace: workspace, gradOutput: dy, gradInput: dx)
                out.append(compare("maxPoolBackward \(label) routes to first max \(name)", actual: try b.download(dx),
                                   expected: maxPoolBackwardReference(g, special, r), tolerance: gradTol))
            }
        }
        return out
    }

    static func avgPool(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let tol = Tolerance(atol: 1e-6, rtol: 2e-6)   // float sums of up to 9 terms of size <= 1
        for (k, g) in poolGeometries.enumerated() {
            let name = F.poolName(g), n = g.inputShape.reduce(1, *), m = g.outputShape.reduce(1, *)
            let x = checkInput(n, seed: 300 + UInt64(k))
            let r = checkInput(m, seed: 310 + UInt64(k))
            let xt = try b.tensor(x, shape: g.inputShape), yt = try F.garbage(b, g.outputShape)
            b.avgPoolForward(g, input: xt, output: yt)
            out.append(compare("avgPoolForward \(name)", actual: try b.download(yt),
                               expected: poolReference(g, x, max: false), tolerance: tol))
            let dy = try b.tensor(r, shape: g.outputShape), dx = try F.garbage(b, g.inputShape)
            b.avgPoolBackward(g, gradOutput: dy, gradInput: dx)
            let fd = finiteDifferenceGradient(at: x) { dot(poolReference(g, $0, max: false), r) }
            out.append(compare("avgPoolBackward dx \(name)", actual: try b.download(dx), expected: fd, tolerance: tol))
        }
        return out
    }

    static func globalAvgPool(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let tol = Tolerance(atol: 1e-6, rtol: 1e-5)
        for (k, shape) in [[2, 3, 5, 5], [1, 1, 4, 4], [3, 4, 1, 1], [2, 2, 3, 7]].enumerated() {
            let name = F.shapeName(shape), n = shape.reduce(1, *)
            let planes = shape[0] * shape[1], hw = shape[2] * shape[3]
            let x = checkInput(n, seed: 400 + UInt64(k))
            let r = checkInput(planes, seed: 410 + UInt64(k))
            func ref(_ x: [Double]) -> [Double] {
                (0..<planes).map { p in x[(p * hw)..<((p + 1) * hw)].reduce(0, +) / Double(hw) }
            }
            let xt = try b.tensor(x, shape: shape), yt = try F.garbage(b, [shape[0], shape[1]])
            b.globalAvgPoolForward(input: xt, output: yt)
            out.append(compare("globalAvgPoolForward \(name)", actual: try b.download(yt), expected: ref(x), tolerance: tol))
            let dy = try b.tensor(r, shape: [shape[0], shape[1]]), dx = try F.garbage(b, shape)
            b.globalAvgPoolBackward(gradOutput: dy, gradInput: dx)
            let fd = finiteDifferenceGradient(at: x) { dot(ref($0), r) }
            out.append(compare("globalAvgPoolBackward dx \(name)", actual: try b.download(dx), expected: fd, tolerance: tol))
        }
        return out
    }

    // MARK: Batch norm

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


    // MARK: Softmax cross-entropy

    /// Per-row `logsumexp(z) - z[label]`, with the max subtracted (exact in float64 at these sizes).
    static func crossEntropyReference(_ z: [Double], labels: [Int], k: Int) -> [Double] {
        labels.indices.map { i in
            let row = z[(i * k)..<((i + 1) * k)]
            let m = row.max()!
            return m + log(row.reduce(0) { $0 + exp($1 - m) }) - z[i * k + labels[i]]
        }
    }

    static func softmaxCrossEntropy(_ b: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        // Losses up to ~120 (spread 60): float32 rounding of the logit differences and log-sum-exp.
        let lossTol = Tolerance(atol: 1e-5, rtol: 1e-5)
        let gradTol = Tolerance(atol: 1e-6, rtol: 1e-5)
        // (N, K, logit offset, half spread, gradScale): the offsets of +-1000 and -500 overflow
        // or underflow exp() unless the maximum is subtracted.
        let cases: [(Int, Int, Double, Double, Double)] = [
            (1, 1, 0, 1, 1), (1, 10, 0, 3, 1), (4, 7, 0, 3, 0.25), (6, 3, 1000, 30, 1.0 / 6), (3, 5, -500, 60, 0.5),
        ]
        for (c, (n, k, offset, spread, scale)) in cases.enumerated() {
            let s = UInt64(600 + 10 * c)
            let name = "\(n)x\(k)" + (offset == 0 ? "" : " logits \(Int(offset))+-\(Int(spread))")
            let z = checkInput(n * k, seed: s, low: offset - spread, high: offset + spread)
            let labels = (0..<n).map { Int(Philox.uniform(seed: s + 1, counter: 0, index: $0) * Float(k)) }
            let ref = crossEntropyReference(z, labels: labels, k: k)
            let zt = try b.tensor(z, shape: [n, k]), lt = try b.tensor(labels.map { Float($0) }, shape: [n])
            let losses = try F.garbage(b, [n]), grad = try F.garbage(b, [n, k])
            b.softmaxCrossEntropy(logits: zt, labels: lt, losses: losses, gradLogits: grad, gradScale: Float(scale))
            out.append(compare("softmaxCrossEntropy losses \(name)", actual: try b.download(losses), expected: ref,
                               tolerance: lossTol))
            let fd = finiteDifferenceGradient(at: z) { scale * crossEntropyReference($0, labels: labels, k: k).reduce(0, +) }
            out.append(compare("softmaxCrossEntropy gradLogits (scale \(scale)) \(name)", actual: try b.download(grad),
                               expected: fd, tolerance: gradTol))
            let lossesOnly = try F.garbage(b, [n])
            b.softmaxCrossEntropy(logits: zt, labels: lt, losses: lossesOnly, gradLogits: nil, gradScale: 1)
            out.append(compare("softmaxCrossEntropy losses without gradient \(name)", actual: try b.download(lossesOnly),
                               expected: ref, tolerance: lossTol))
        }
        return out
    }
}
