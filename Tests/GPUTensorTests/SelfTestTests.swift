import XCTest
import GPUTensor

/// The whole verification suite on the CPU backend, and proof that it catches small kernel bugs.
final class SelfTestTests: XCTestCase {
    func testAllChecksPassOnCPU() {
        var failures: [String] = []
        let (passed, failed) = KernelChecks.run(on: CPUBackend()) { r in
            if !r.passed { failures.append(r.summary) }
        }
        for f in failures { print(f) }
        XCTAssertEqual(failed, 0, failures.joined(separator: "\n"))
        // Layer and utility kernels alone contribute 225 comparisons.
        XCTAssertGreaterThanOrEqual(passed, 225)
    }

    /// Runs the checks matching `filter` on a backend with `fault` and returns (passed, failed).
    private func run(_ fault: BrokenBackend.Fault, _ filter: String) -> (passed: Int, failed: Int, failures: [String]) {
        var failures: [String] = []
        let counts = KernelChecks.run(on: BrokenBackend(fault), filter: filter) { r in
            if !r.passed { failures.append(r.summary) }
        }
        return (counts.passed, counts.failed, failures)
    }

    /// The failures a broken backend must produce, marked so they are not mistaken for real ones.
    private func printExpected(_ failures: [String]) {
        for f in failures { print("[expected, BrokenBackend] \(f)") }
    }

    func testReluBackwardOffsetIsCaught() {
        let broken = run(.reluBackwardOffset, "relu")
        printExpected(broken.failures)
        XCTAssertGreaterThan(broken.failed, 0)
        XCTAssertTrue(broken.failures.allSatisfy { $0.contains("reluBackward") }, "only the broken kernel fails")
        XCTAssertEqual(run(.reluBackwardOffset, "pool2d avg").failed, 0, "other kernels unaffected")
    }

    func testBatchNormDxOffByTenthOfAPercentIsCaught() {
        let broken = run(.batchNormDxScaled, "batchnorm")
        printExpected(broken.failures)
        XCTAssertGreaterThan(broken.failed, 0)
        XCTAssertTrue(broken.failures.allSatisfy { $0.contains("batchNormBackward dx") })
    }

    func testBatchNormIgnoringAccumulateIsCaught() {
        let broken = run(.batchNormIgnoresAccumulate, "batchnorm")
        printExpected(broken.failures)
        XCTAssertGreaterThan(broken.failed, 0)
        XCTAssertTrue(broken.failures.allSatisfy { $0.contains("accumulate") })
    }

    func testCropFlipOnWrongRandomStreamIsCaught() {
        let broken = run(.cropFlipWrongStream, "augment crop-flip")
        printExpected(broken.failures)
        XCTAssertGreaterThan(broken.failed, 0)
    }

    func testBatchSlotBugsAreCaught() {
        for fault in [BrokenBackend.Fault.slotOffByOne, .nanDroppedFromSlotSum] {
            let broken = run(fault, "batch slots")
            printExpected(broken.failures)
            XCTAssertGreaterThan(broken.failed, 0, "\(fault)")
        }
        XCTAssertEqual(run(.none, "batch slots").failed, 0)
    }

    func testHealthyForwardingBackendPasses() {
        XCTAssertEqual(run(.none, "batchnorm").failed, 0)
    }

    // MARK: Which backend runs which suite

    /// On a GPU the float64 suite runs on a strict-FP32 backend (TF32 would fail it falsely) and
    /// the cross-device suite on the backend as asked for; every line names its suite.
    func testOnAGPUTheFloat64SuiteRunsStrict() throws {
        let gpu = BrokenBackend(.none, claiming: .cuda(0))
        let strict = BrokenBackend(.none, claiming: .cuda(0))
        let cross = [KernelCheck("cross") { _ in [] }]
        var opened = 0
        let suites = try SelfTestSuite.plan(for: gpu, strictFP32: false, makeStrict: { opened += 1; return strict },
                                            crossDevice: cross)
        XCTAssertEqual(opened, 1)
        XCTAssertEqual(suites.count, 2)
        XCTAssertTrue(suites[0].backend === strict, "float64 suite on the strict backend")
        XCTAssertEqual(suites[0].checks.count, KernelChecks.all.count)
        XCTAssertEqual(suites[0].label, "float64 ref, strict FP32")
        XCTAssertTrue(suites[1].backend === gpu, "cross-device suite on the backend as asked for")
        XCTAssertEqual(suites[1].label, "vs cpu, TF32 math, TF32 tolerance")
        let line = suites[0].line(compare("x", actual: [1], expected: [1], tolerance: Tolerance(atol: 1e-6, rtol: 0)))
        XCTAssertTrue(line.hasPrefix("[float64 ref, strict FP32] ok"), line)

        // --strict-fp32: the backend itself is strict, no second one is opened.
        let strictOnly = try SelfTestSuite.plan(for: strict, strictFP32: true, makeStrict: { opened += 1; return gpu },
                                                crossDevice: cross)
        XCTAssertEqual(opened, 1)
        XCTAssertTrue(strictOnly.allSatisfy { $0.backend === strict })
        XCTAssertEqual(strictOnly[1].label, "vs cpu, strict FP32 math, TF32 tolerance")

        let cpu = try SelfTestSuite.plan(for: CPUBackend(), strictFP32: false, makeStrict: { XCTFail(); return gpu },
                                         crossDevice: cross)
        XCTAssertEqual(cpu.map(\.label), ["float64 ref, FP32"])
    }
}

/// A backend that forwards every call to a `CPUBackend` but, depending on `fault`, corrupts one
/// kernel's result by a small amount, the way a subtle bug in a new backend would.
final class BrokenBackend: Backend {
    enum Fault { case none, reluBackwardOffset, batchNormDxScaled, batchNormIgnoresAccumulate, cropFlipWrongStream, slotOffByOne, nanDroppedFromSlotSum }
    let base = CPUBackend()
    let fault: Fault
    /// The device it claims to be (a GPU, for tests of what selftest does on one).
    let claimedDevice: Device?
    init(_ fault: Fault, claiming device: Device? = nil) { self.fault = fault; self.claimedDevice = device }

    var device: Device { claimedDevice ?? base.device }
    var name: String { base.name }
    func allocate(_ shape: [Int]) throws -> Tensor { try base.allocate(shape) }
    func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor) { base.upload(source, to: destination) }
    func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws { try base.download(source, into: destination) }
    func copy(_ source: Tensor, to destination: Tensor) { base.copy(source, to: destination) }
    func synchronize() throws { try base.synchronize() }
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) { base.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c) }
    func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) { base.conv2dForward(g, input: x, weight: w, bias: bias, output: y) }
    func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) { base.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx) }
    func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor, gradWeight dw: Tensor, mode: GradMode) { base.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode) }
    func addBias(_ y: Tensor, bias: Tensor) { base.addBias(y, bias: bias) }
    func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) { base.biasBackward(gradOutput: dy, gradBias: db, mode: mode) }
    func reluForward(_ x: Tensor, output y: Tensor) { base.reluForward(x, output: y) }
    func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        base.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        if fault == .reluBackwardOffset { dx.hostPointer[0] += 1e-3 }
    }
    func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) { base.maxPoolForward(g, input: x, output: y) }
    func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) { base.maxPoolBackward(g, input: x, output: y, gradOutput: dy, gradInput: dx) }
    func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) { base.avgPoolForward(g, input: x, output: y) }
    func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) { base.avgPoolBackward(g, gradOutput: dy, gradInput: dx) }
    func globalAvgPoolForward(input x: Tensor, output y: Tensor) { base.globalAvgPoolForward(input: x, output: y) }
    func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) { base.globalAvgPoolBackward(gradOutput: dy, gradInput: dx) }
    func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) { base.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon) }
    func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) { base.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar, epsilon: epsilon) }
    func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        let mode = fault == .batchNormIgnoresAccumulate ? .overwrite : mode
        base.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        if fault == .batchNormDxScaled {
            for i in 0..<dx.count { dx.hostPointer[i] *= 1.001 }
        }
    }
    func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) { base.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits, gradScale: gradScale) }
    func fill(_ x: Tensor, value: Float) { base.fill(x, value: value) }
    func add(_ a: Tensor, _ b: Tensor, output out: Tensor) { base.add(a, b, output: out) }
    func scale(_ x: Tensor, by alpha: Float, output out: Tensor) { base.scale(x, by: alpha, output: out) }
    func axpy(alpha: Float, x: Tensor, y: Tensor) { base.axpy(alpha: alpha, x: x, y: y) }
    func sum(_ x: Tensor) throws -> Float { try base.sum(x) }
    func argmax(rows x: Tensor, output out: Tensor) { base.argmax(rows: x, output: out) }
    func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        base.sum(x, into: out, slot: slot)
        // A reduction that skips non-finite values: divergence would go unnoticed.
        if fault == .nanDroppedFromSlotSum, !out.hostPointer[slot].isFinite {
            out.hostPointer[slot] = (0..<x.count).reduce(Float(0)) { x.hostPointer[$1].isFinite ? $0 + x.hostPointer[$1] : $0 }
        }
    }
    func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        // Off by one slot: the count lands where the next batch's will.
        base.countCorrect(logits: logits, labels: labels, into: out, slot: fault == .slotOffByOne ? min(slot + 1, out.count - 1) : slot)
    }
    func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) { base.dropoutForward(x, output: y, mask: mask, probability: p, seed: seed, counter: counter) }
    func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) { base.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx) }
    func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) { base.fillUniform(x, low: low, high: high, seed: seed, counter: counter) }
    func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) { base.fillNormal(x, mean: mean, std: std, seed: seed, counter: counter) }
    func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool) { base.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr, momentum: momentum, weightDecay: wd, nesterov: nesterov) }
    func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?, learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) { base.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr, alpha: alpha, epsilon: eps, momentum: momentum, weightDecay: wd) }
    func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor, learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int) { base.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr, beta1: beta1, beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step) }
    func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        // Off by one element of the Philox stream: plausible-looking crops that break the contract.
        let counter = fault == .cropFlipWrongStream ? counter + 1 : counter
        base.randomCropFlip(x, output: y, padding: padding, allowFlip: allowFlip, seed: seed, counter: counter)
    }
    func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) { base.normalizeChannels(x, output: y, mean: mean, std: std) }
    func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) { base.shortcutPadForward(x, output: y, stride: stride, channelOffset: channelOffset) }
    func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) { base.shortcutPadBackward(gradOutput: dy, gradInput: dx, stride: stride, channelOffset: channelOffset) }
}
