#if canImport(Glibc)
import Glibc
#endif

// The Pooling family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// Max, average and global-average pooling.
    static var poolingKernels: [KernelCheck] {
        [
            KernelCheck("pool2d max", run: maxPool),
            KernelCheck("pool2d avg", run: avgPool),
            KernelCheck("global pool avg", run: globalAvgPool),
        ]
    }

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
}

extension CrossDevice {
    static func pooling(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        var out: [CheckResult] = []
        let x = input([3, 4, 9, 9], seed: 300)
        // NaN scattered through x: the first NaN of a window wins and takes its dy, on both.
        let withNaN: Input = (x.values.enumerated().map { $0.offset % 13 == 4 ? .nan : $0.element }, x.shape)
        for g in [PoolGeometry(batch: 3, channels: 4, height: 9, width: 9, window: 2, stride: 2),
                  PoolGeometry(batch: 3, channels: 4, height: 9, width: 9, window: 3, stride: 2, padding: 1),
                  PoolGeometry(batch: 3, channels: 4, height: 9, width: 9, window: 2, stride: 2, padding: 1)] {
            let dy = input(g.outputShape, seed: 302)
            out += try pair("maxpool \(g.window)/\(g.stride) pad \(g.padding) with NaN fwd, bwd", b, r, inputs: [withNaN, dy],
                            outputs: [g.outputShape, g.inputShape], tolerance: float, specials: true) { be, t, o in
                let positions = try be.allocateMaxPoolWorkspace(g)
                be.maxPoolForward(g, input: t[0], output: o[0], workspace: positions)
                be.maxPoolBackward(g, input: t[0], output: o[0], workspace: positions, gradOutput: t[1], gradInput: o[1])
            }
            out += try pair("maxpool \(g.window)/\(g.stride) pad \(g.padding) fwd, bwd", b, r, inputs: [x, dy],
                            outputs: [g.outputShape, g.inputShape], tolerance: float) { be, t, o in
                let positions = try be.allocateMaxPoolWorkspace(g)
                be.maxPoolForward(g, input: t[0], output: o[0], workspace: positions)
                be.maxPoolBackward(g, input: t[0], output: o[0], workspace: positions, gradOutput: t[1], gradInput: o[1])
            }
            out += try pair("avgpool \(g.window)/\(g.stride) pad \(g.padding) fwd, bwd", b, r, inputs: [x, dy],
                            outputs: [g.outputShape, g.inputShape], tolerance: float) { be, t, o in
                be.avgPoolForward(g, input: t[0], output: o[0])
                be.avgPoolBackward(g, gradOutput: t[1], gradInput: o[1])
            }
        }
        out += try pair("global avgpool fwd, bwd", b, r, inputs: [x, input([3, 4], seed: 303)],
                        outputs: [[3, 4], x.shape], tolerance: float) { be, t, o in
            be.globalAvgPoolForward(input: t[0], output: o[0])
            be.globalAvgPoolBackward(gradOutput: t[1], gradInput: o[1])
        }
        return out
    }
}
