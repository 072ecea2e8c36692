#if canImport(Glibc)
import Glibc
#endif

// The Loss family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// The fused softmax cross-entropy.
    static var lossKernels: [KernelCheck] {
        [
            KernelCheck("softmax cross-entropy", run: softmaxCrossEntropy),
        ]
    }

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

extension CrossDevice {
    static func softmax(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let (n, k) = (37, 10)
        let labels = (0..<n).map { Double(($0 * 7) % k) }
        return try pair("softmax-ce \(n)x\(k)", b, r, inputs: [input([n, k], seed: 400, low: -8, high: 8), (labels, [n])],
                        outputs: [[n], [n, k]], tolerance: float) { be, t, o in
            be.softmaxCrossEntropy(logits: t[0], labels: t[1], losses: o[0], gradLogits: o[1], gradScale: 1 / Float(n))
        }
    }
}
