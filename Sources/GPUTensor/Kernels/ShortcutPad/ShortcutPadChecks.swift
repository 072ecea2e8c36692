#if canImport(Glibc)
import Glibc
#endif

// The ShortcutPad family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// `shortcutPad` forward, backward and their adjointness.
    static var shortcutPadKernels: [KernelCheck] {
        [
            KernelCheck("shortcutPad", run: shortcutPad),
        ]
    }

    static func shortcutPadReference(_ x: [Double], xShape: [Int], yShape: [Int], stride: Int, channelOffset: Int) -> [Double] {
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

    static func shortcutPad(_ b: Backend) throws -> [CheckResult] {
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
                               expected: shortcutPadReference(x, xShape: xShape, yShape: yShape, stride: stride,
                                                           channelOffset: offset), tolerance: F.exact))
            let dx = try F.garbage(b, xShape)
            b.shortcutPadBackward(gradOutput: try b.tensor(r, shape: yShape), gradInput: dx, stride: stride, channelOffset: offset)
            let g = try b.download(dx)
            let fd = finiteDifferenceGradient(at: x) {
                dot(shortcutPadReference($0, xShape: xShape, yShape: yShape, stride: stride, channelOffset: offset), r)
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

extension CrossDevice {
    static func shortcutPad(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let x = input([6, 3, 8, 8], seed: 800)
        return try pair("shortcutPad stride 2 fwd, bwd", b, r, inputs: [x, input([6, 8, 4, 4], seed: 801)],
                        outputs: [[6, 8, 4, 4], x.shape], tolerance: exact) { be, t, o in
            be.shortcutPadForward(t[0], output: o[0], stride: 2, channelOffset: 2)
            be.shortcutPadBackward(gradOutput: t[1], gradInput: o[1], stride: 2, channelOffset: 2)
        }
    }
}
