#if canImport(Glibc)
import Glibc
#endif

// The Dropout family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// Dropout.
    static var dropoutKernels: [KernelCheck] {
        [
            KernelCheck("dropout", run: dropout),
        ]
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
}

extension CrossDevice {
    static func dropout(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let n = 10_007, seed: UInt64 = 0xDEAD_BEEF_1234, counter: UInt64 = 77
        return try pair("dropout p=0.3 (mask, y, dx)", b, r, inputs: [input([n], seed: 600), input([n], seed: 601)],
                           outputs: [[n], [n], [n]], tolerance: exact) { be, t, o in
            be.dropoutForward(t[0], output: o[1], mask: o[0], probability: 0.3, seed: seed, counter: counter)
            be.dropoutBackward(gradOutput: t[1], mask: o[0], gradInput: o[2])
        }
    }
}
