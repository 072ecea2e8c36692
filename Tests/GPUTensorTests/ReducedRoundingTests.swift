import XCTest
@testable import GPUTensor

/// `ReducedRounding` (the Swift mirror of the CUDA backend's bf16 / fp16 cast kernels) against an
/// independent reference: the nearest representable value found by searching the format's
/// sorted values, ties to the even bit pattern, overflow past the largest finite value plus half
/// an ulp to infinity. And the reduced-precision checks of Verification/CUDAPrecisionChecks.swift
/// run against emulated backends: one that rounds as the CUDA backend does passes, one that
/// claims bf16 but computes in FP32 fails. No GPU needed.
final class ReducedRoundingTests: XCTestCase {
    /// Ties, subnormals, the overflow thresholds, infinities, NaNs, signed zeros.
    static let edgeCases: [Float] = {
        var v: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, Float(bitPattern: 0x7f80_0001), Float(bitPattern: 0xffc1_2345),
                          .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude,
                          65504, 65519.99, 65520, -65520, 65536, 1e-8, 0x1p-24, 0x1p-25, -0x1p-25, 0x1.000002p-25, 0x1.8p-24,
                          0x1.8p-23, 0x1p-14, 0x1.ffcp-15, 0x1.ffep-15, 0x1.fffp-15, 3.0e-5, 6.1e-5,
                          // fp16 subnormal ties with an even lower neighbour (2.5, 4.5, 6.5, 1022.5 x 2^-24): to even, down
                          0x1.4p-23, 0x1.2p-22, 0x1.ap-22, 0x1.ff4p-15]
        // bf16 ties: 1 + 2^-8 (to 1, even), 1 + 3 * 2^-8 (to 1 + 2^-6... up, even), just above and below.
        for base: UInt32 in [0x3f80_0000, 0x3f81_0000, 0x4049_0000, 0x7f7f_0000, 0x0001_0000, 0x0080_0000] {
            for low: UInt32 in [0x7fff, 0x8000, 0x8001, 0xffff] { v.append(Float(bitPattern: base | low)) }
        }
        // fp16 ties at 1 (13 dropped bits) and at a subnormal.
        for base: UInt32 in [0x3f80_0000, 0x3f80_2000, 0x3300_0000, 0x3400_0000, 0x3880_0000] {
            for low: UInt32 in [0x0fff, 0x1000, 0x1001, 0x3000] { v.append(Float(bitPattern: base | low)) }
        }
        return v + v.map { -$0 }
    }()

    /// Random float bit patterns, half of them in fp16's range.
    static func randomPatterns(_ count: Int, seed: UInt64) -> [UInt32] {
        (0..<count).map { i in
            let bits = UInt32(Philox.uniform(seed: seed, counter: 1, index: i) * 4294967296.0) & 0xffff_ffff
            return i % 2 == 0 ? bits : (bits & 0x807f_ffff) | (UInt32(100 + i % 45) << 23)
        }
    }

    /// The format's non-negative values by bit pattern (monotonic), infinity as the next power of two.
    private static func positiveValues(_ decode: (UInt16) -> Float, infinity: UInt16, nextPower: Double) -> [Double] {
        (0...infinity).map { $0 == infinity ? nextPower : Double(decode($0)) }
    }
    private static let bf16Values = positiveValues(ReducedRounding.bf16Value, infinity: 0x7f80, nextPower: 0x1p128)
    private static let fp16Values = positiveValues(ReducedRounding.fp16Value, infinity: 0x7c00, nextPower: 65536)

    /// Nearest value by binary search, ties to the even pattern; NaN gives nil.
    private static func reference(_ f: Float, _ values: [Double]) -> UInt16? {
        guard !f.isNaN else { return nil }
        let x = abs(Double(f)), sign: UInt16 = f.sign == .minus ? 0x8000 : 0
        if x >= values.last! { return sign | UInt16(values.count - 1) }
        var lo = 0, hi = values.count - 1   // values[lo] <= x < values[hi]
        while hi - lo > 1 { let mid = (lo + hi) / 2; if values[mid] <= x { lo = mid } else { hi = mid } }
        let below = x - values[lo], above = values[hi] - x
        let pick = below < above ? lo : above < below ? hi : (lo % 2 == 0 ? lo : hi)
        return sign | UInt16(pick)
    }

    func testRoundingMatchesTheNearestValueReference() {
        let floats = Self.edgeCases + Self.randomPatterns(200_000, seed: 3).map(Float.init(bitPattern:))
        var failures: [String] = []
        for f in floats {
            let bf = ReducedRounding.bf16Bits(f), hf = ReducedRounding.fp16Bits(f)
            if let want = Self.reference(f, Self.bf16Values), want != bf {
                failures.append("bf16 \(f) (0x\(String(f.bitPattern, radix: 16))): 0x\(String(bf, radix: 16)), want 0x\(String(want, radix: 16))")
            }
            if let want = Self.reference(f, Self.fp16Values), want != hf {
                failures.append("fp16 \(f) (0x\(String(f.bitPattern, radix: 16))): 0x\(String(hf, radix: 16)), want 0x\(String(want, radix: 16))")
            }
            if f.isNaN {
                XCTAssertTrue(ReducedRounding.bf16Value(bf).isNaN && ReducedRounding.fp16Value(hf).isNaN, "NaN stays NaN: \(f)")
            }
        }
        XCTAssertEqual(failures.count, 0, failures.prefix(20).joined(separator: "\n"))
    }

    func testNamedEdgeCases() {
        // bf16: 1 + 2^-8 is the tie between 1 and 1 + 2^-7: to 1 (even); 1 + 3 * 2^-8 up to 1 + 2^-6.
        XCTAssertEqual(ReducedRounding.bf16Bits(1 + 0x1p-8), 0x3f80)
        XCTAssertEqual(ReducedRounding.bf16Bits(1 + 3 * 0x1p-8), 0x3f82)
        XCTAssertEqual(ReducedRounding.bf16Bits(.greatestFiniteMagnitude), 0x7f80, "past bf16's largest + half an ulp: infinity")
        XCTAssertEqual(ReducedRounding.bf16Bits(-.infinity), 0xff80)
        // fp16: 65504 is the largest finite, 65520 the tie to infinity, 65519.99 stays finite.
        XCTAssertEqual(ReducedRounding.fp16Bits(65504), 0x7bff)
        XCTAssertEqual(ReducedRounding.fp16Bits(65519.99), 0x7bff)
        XCTAssertEqual(ReducedRounding.fp16Bits(65520), 0x7c00)
        XCTAssertEqual(ReducedRounding.fp16Bits(-1e10), 0xfc00)
        // Subnormals: 2^-24 is the smallest; 2^-25 the tie to 0 (even); 1.5 * 2^-24 the tie to 2 * 2^-24.
        XCTAssertEqual(ReducedRounding.fp16Bits(0x1p-24), 0x0001)
        XCTAssertEqual(ReducedRounding.fp16Bits(0x1p-25), 0x0000)
        XCTAssertEqual(ReducedRounding.fp16Bits(-0x1p-25), 0x8000)
        XCTAssertEqual(ReducedRounding.fp16Bits(0x1.000002p-25), 0x0001)
        XCTAssertEqual(ReducedRounding.fp16Bits(0x1.8p-24), 0x0002)
        XCTAssertEqual(ReducedRounding.fp16Bits(0x1.ffep-15), 0x0400, "the largest subnormal's tie rounds up to the smallest normal")
        XCTAssertEqual(ReducedRounding.fp16Bits(0x1.4p-23), 0x0002, "2.5 x 2^-24: the tie goes to the even 2")
        XCTAssertEqual(ReducedRounding.fp16Bits(0x1.ff4p-15), 0x03fe, "1022.5 x 2^-24: to the even 1022")
        XCTAssertEqual(ReducedRounding.fp16Value(0x0001), 0x1p-24)
        XCTAssertEqual(ReducedRounding.fp16Value(0x3c00), 1)
        XCTAssertEqual(ReducedRounding.fp16Value(0xfc00), -.infinity)
        // Every finite pattern round-trips.
        for h in UInt16(0)...UInt16.max {
            let b = ReducedRounding.bf16Value(h), f = ReducedRounding.fp16Value(h)
            if !b.isNaN { XCTAssertEqual(ReducedRounding.bf16Bits(b), h) }
            if !f.isNaN { XCTAssertEqual(ReducedRounding.fp16Bits(f), h) }
        }
    }

    // MARK: The checks against emulated backends

    /// The CPU backend (FP32) presented as a reduced-precision device: with `rounds`, as the CUDA
    /// backend computes (inputs rounded to the format, FP32 sums, a convolution's result rounded
    /// once and then combined in FP32); without, it only claims the precision.
    final class EmulatedReducedBackend: ForwardingBackend {
        let claimed: Precision, rounds: Bool
        init(_ claimed: Precision, rounds: Bool) {
            self.claimed = claimed; self.rounds = rounds
            super.init(wrapping: CPUBackend(threads: 1))
        }
        override var precision: Precision { claimed }

        private func rounded(_ t: Tensor) -> Tensor {
            guard rounds else { return t }
            let values = try! base.download(t).map { ReducedRounding.round($0, to: claimed) }
            return try! base.tensor(values, shape: t.shape)
        }
        /// `out = round(tmp)` or `out += round(tmp)`.
        private func store(_ tmp: Tensor, into out: Tensor, accumulate: Bool) {
            var v = try! base.download(tmp).map { rounds ? ReducedRounding.round($0, to: claimed) : $0 }
            if accumulate { v = zip(v, try! base.download(out)).map { $0 + $1 } }
            base.upload(v, to: out)
        }
        override func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
            base.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: rounded(a), b: rounded(b), beta: beta, c: c)
        }
        override func gemmBatched(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, batch: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
            base.gemmBatched(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, batch: batch, alpha: alpha,
                             a: rounded(a), b: rounded(b), beta: beta, c: c)
        }
        override func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
            let tmp = try! base.allocate(y.shape)
            base.conv2dForward(g, input: rounded(x), weight: rounded(w), bias: nil, output: tmp)
            store(tmp, into: y, accumulate: false)
            if let bias { base.addBias(y, bias: bias) }
        }
        override func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
            let tmp = try! base.allocate(dx.shape)
            base.conv2dBackwardData(g, gradOutput: rounded(dy), weight: rounded(w), gradInput: tmp)
            store(tmp, into: dx, accumulate: false)
        }
        override func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor, gradWeight dw: Tensor, mode: GradMode) {
            let tmp = try! base.allocate(dw.shape)
            base.conv2dBackwardFilter(g, input: rounded(x), gradOutput: rounded(dy), gradWeight: tmp, mode: .overwrite)
            store(tmp, into: dw, accumulate: mode == .accumulate)
        }
    }

    private func run(_ backend: Backend) -> (passed: Int, failed: [String]) {
        var failed: [String] = [], passed = 0
        _ = KernelChecks.run(CUDAPrecisionChecks.checks, on: backend) { r in
            if r.passed { passed += 1 } else { failed.append(r.summary) }
        }
        return (passed, failed)
    }

    func testChecksPassForABackendThatRoundsAsCUDADoes() {
        for p in [Precision.bf16, .fp16] {
            let (passed, failed) = run(EmulatedReducedBackend(p, rounds: true))
            XCTAssertEqual(failed, [], "\(p)")
            // gemm: 4 + 4 + 1 shapes; conv: 4 shapes x 3 directions; 2 comparisons each, 3 with a CPU bf16 reference.
            XCTAssertEqual(passed, (9 + 12) * (p == .bf16 ? 3 : 2), "\(p)")
        }
    }

    func testChecksFailForABackendThatOnlyClaimsTheFormat() {
        let (_, failed) = run(EmulatedReducedBackend(.bf16, rounds: false))
        XCTAssertTrue(failed.contains { $0.contains("gemm NN 33x17x129 bf16 vs float64 of inputs rounded") }, failed.joined(separator: "\n"))
        XCTAssertFalse(failed.contains { $0.contains("format bound") }, "FP32 is within the bf16 bound: \(failed.joined(separator: "\n"))")
    }

    func testChecksProduceNothingAtFP32() {
        XCTAssertEqual(run(CPUBackend(threads: 1)).passed, 0)
        XCTAssertEqual(run(CPUBackend(threads: 1)).failed, [])
    }

    /// The format bound is not vacuous: bf16 inputs of a long dot product do exceed the
    /// FP32-accumulation bound, and stay within the format's.
    func testAllowanceSeparatesTheFormats() {
        let k = 576
        let a = checkInput(k, seed: 11), b = checkInput(k, seed: 12)
        let exact = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }, absSum = zip(a, b).reduce(0) { $0 + abs($1.0 * $1.1) }
        var sum: Float = 0
        for (x, y) in zip(a, b) { sum += ReducedRounding.round(Float(x), to: .bf16) * ReducedRounding.round(Float(y), to: .bf16) }
        let error = abs(Double(sum) - exact)
        XCTAssertLessThanOrEqual(error, CUDAPrecisionChecks.allowance(.bf16, terms: k, absProducts: absSum, result: exact, outputRounded: false))
        XCTAssertGreaterThan(error, CUDAPrecisionChecks.accumulationAllowance(.bf16, terms: k, absProducts: absSum, result: exact, outputRounded: false))
    }
}
