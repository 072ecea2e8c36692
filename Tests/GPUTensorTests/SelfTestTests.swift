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

    /// A fused batch norm + ReLU backward that forgets ReLU's mask.
    func testFusedBatchNormReLUWithoutTheMaskIsCaught() {
        let broken = run(.batchNormReLUMaskIgnored, "bn+ReLU fused")
        printExpected(broken.failures)
        XCTAssertGreaterThan(broken.failed, 0)
        XCTAssertTrue(broken.failures.allSatisfy { $0.contains("batchNormReLUBackward") }, "only the broken kernel fails")
        XCTAssertTrue(broken.failures.contains { $0.contains("vs unfused") }, "the comparison with the composition fails too")
        XCTAssertEqual(run(.none, "bn+ReLU fused").failed, 0)
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
final class BrokenBackend: ForwardingBackend {
    enum Fault { case none, reluBackwardOffset, batchNormDxScaled, batchNormIgnoresAccumulate, cropFlipWrongStream, slotOffByOne, nanDroppedFromSlotSum, batchNormReLUMaskIgnored }
    let fault: Fault
    /// The device it claims to be (a GPU, for tests of what selftest does on one).
    let claimedDevice: Device?
    init(_ fault: Fault, claiming device: Device? = nil) {
        self.fault = fault; self.claimedDevice = device
        super.init(wrapping: CPUBackend())
    }

    override var device: Device { claimedDevice ?? base.device }
    override func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        base.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        if fault == .reluBackwardOffset { dx.hostPointer[0] += 1e-3 }
    }
    override func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        let mode = fault == .batchNormIgnoresAccumulate ? .overwrite : mode
        base.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        if fault == .batchNormDxScaled {
            for i in 0..<dx.count { dx.hostPointer[i] *= 1.001 }
        }
    }
    override func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        guard fault == .batchNormReLUMaskIgnored else {
            return base.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean, saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        }
        base.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
    }
    override func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        base.sum(x, into: out, slot: slot)
        // A reduction that skips non-finite values: divergence would go unnoticed.
        if fault == .nanDroppedFromSlotSum, !out.hostPointer[slot].isFinite {
            out.hostPointer[slot] = (0..<x.count).reduce(Float(0)) { x.hostPointer[$1].isFinite ? $0 + x.hostPointer[$1] : $0 }
        }
    }
    override func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        // Off by one slot: the count lands where the next batch's will.
        base.countCorrect(logits: logits, labels: labels, into: out, slot: fault == .slotOffByOne ? min(slot + 1, out.count - 1) : slot)
    }
    override func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        // Off by one element of the Philox stream: plausible-looking crops that break the contract.
        let counter = fault == .cropFlipWrongStream ? counter + 1 : counter
        base.randomCropFlip(x, output: y, padding: padding, allowFlip: allowFlip, seed: seed, counter: counter)
    }
}

