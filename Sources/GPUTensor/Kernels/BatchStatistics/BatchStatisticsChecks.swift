#if canImport(Glibc)
import Glibc
#endif

// The BatchStatistics family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// The per-batch statistics kept on the device.
    static var batchStatisticsKernels: [KernelCheck] {
        [
            KernelCheck("batch slots (sum, correct count)", run: batchSlots),
        ]
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
}
