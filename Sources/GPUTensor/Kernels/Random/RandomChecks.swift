#if canImport(Glibc)
import Glibc
#endif

// The Random family's checks: float64 references and checks (KernelChecks, conventions in
// Verification/KernelCheck.swift) and the comparison with another device (CrossDevice).

extension KernelChecks {
    /// Philox random fills.
    static var randomKernels: [KernelCheck] {
        [
            KernelCheck("random fill", run: randomFills),
        ]
    }

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
}

extension CrossDevice {
    static func random(_ b: Backend, _ r: Backend) throws -> [CheckResult] {
        let n = 10_007, seed: UInt64 = 0xDEAD_BEEF_1234, counter: UInt64 = 77
        var out: [CheckResult] = []
        out += try pair("fillUniform", b, r, inputs: [], outputs: [[n]], tolerance: exact) { be, _, o in
            be.fillUniform(o[0], low: -2, high: 3, seed: seed, counter: counter)
        }
        // Box-Muller in double: GPU and glibc log/sin/cos may differ in the last double bit.
        out += try pair("fillNormal", b, r, inputs: [], outputs: [[n]], tolerance: Tolerance(atol: 1e-6, rtol: 1e-6)) { be, _, o in
            be.fillNormal(o[0], mean: 0.5, std: 2, seed: seed, counter: counter)
        }
        return out
    }
}
