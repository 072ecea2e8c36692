#if canImport(Glibc)
import Glibc
#endif

// The Activation family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// ReLU.
    static var activationKernels: [KernelCheck] {
        [
            KernelCheck("relu", run: relu),
        ]
    }

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
}

extension CrossDevice {
    static func relu(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let x = input([3, 4, 9, 9], seed: 300), dy = input([3, 4, 9, 9], seed: 301)
        return try pair("relu forward, backward", b, r, inputs: [x, dy], outputs: [x.shape, x.shape],
                        tolerance: exact) { be, t, o in
            be.reluForward(t[0], output: o[0])
            be.reluBackward(output: o[0], gradOutput: t[1], gradInput: o[1])
        }
    }
}
