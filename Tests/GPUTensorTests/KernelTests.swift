import XCTest
import Foundation
import GPUTensor

/// Runs each layer and utility kernel check family on the CPU backend; one test per family so a
/// failure names its kernel, and every failing comparison is printed with its values.
final class KernelTests: XCTestCase {
    static let backend = CPUBackend()
    /// `STRATA_VERBOSE_CHECKS=1 swift test` prints every comparison with its worst error ratio.
    static let verbose = ProcessInfo.processInfo.environment["STRATA_VERBOSE_CHECKS"] != nil

    private func assertPasses(_ family: String, minimum: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        var failures: [String] = []
        let (passed, failed) = KernelChecks.run(on: Self.backend, filter: family) { result in
            if !result.passed { failures.append(result.summary) }
            if Self.verbose { print(result.summary) }
        }
        for f in failures { print(f) }
        XCTAssertEqual(failed, 0, "\(family): \(failed) failed:\n" + failures.joined(separator: "\n"), file: file, line: line)
        XCTAssertGreaterThanOrEqual(passed, minimum, "\(family): only \(passed) comparisons ran", file: file, line: line)
    }

    func testRelu() { assertPasses("relu", minimum: 12) }
    func testMaxPool() { assertPasses("pool2d max", minimum: 20) }
    func testAvgPool() { assertPasses("pool2d avg", minimum: 10) }
    func testGlobalAvgPool() { assertPasses("global pool avg", minimum: 8) }
    func testBatchNorm() { assertPasses("batchnorm", minimum: 60) }
    func testBatchNormReLUFused() { assertPasses("bn+ReLU fused", minimum: 76) }
    func testSoftmaxCrossEntropy() { assertPasses("softmax cross-entropy", minimum: 15) }
    func testElementwise() { assertPasses("elementwise", minimum: 18) }
    func testSum() { assertPasses("reduction sum", minimum: 5) }
    func testArgmax() { assertPasses("argmax", minimum: 4) }
    func testRandomFills() { assertPasses("random fill", minimum: 15) }
    func testDropout() { assertPasses("dropout", minimum: 10) }
    func testSGD() { assertPasses("optimizer sgd", minimum: 6) }
    func testRMSProp() { assertPasses("optimizer rmsprop", minimum: 5) }
    func testAdam() { assertPasses("optimizer adam", minimum: 9) }
    func testRandomCropFlip() { assertPasses("augment crop-flip", minimum: 8) }
    func testNormalize() { assertPasses("augment normalize", minimum: 3) }
    func testShortcutPad() { assertPasses("shortcutPad", minimum: 15) }
}

/// The checks use small tensors, which run inline; these run each kernel on tensors big enough
/// to be split over threads and require bitwise the same result as one thread.
final class ThreadedKernelTests: XCTestCase {
    let one = CPUBackend(threads: 1), many = CPUBackend(threads: 4)

    /// Runs `body` on both backends with the same inputs and compares every returned tensor.
    private func assertSame(_ what: String, _ body: (Backend) throws -> [Tensor],
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try body(one).map { try one.download($0) }, b = try body(many).map { try many.download($0) }
        for (i, (x, y)) in zip(a, b).enumerated() {
            XCTAssertTrue(x == y, "\(what): output \(i) differs between 1 and 4 threads", file: file, line: line)
        }
    }

    private func input(_ b: Backend, _ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) throws -> Tensor {
        let t = try b.allocate(shape)
        b.fillUniform(t, low: low, high: high, seed: seed, counter: 0)
        return t
    }

    func testLargeKernelsMatchSingleThread() throws {
        let shape = [16, 16, 18, 18]
        let g = PoolGeometry(batch: 16, channels: 16, height: 18, width: 18, window: 3, stride: 2, padding: 1)
        try assertSame("relu") { b in
            let x = try self.input(b, shape, seed: 1), y = try b.allocate(shape), dx = try b.allocate(shape)
            b.reluForward(x, output: y); b.reluBackward(output: y, gradOutput: x, gradInput: dx)
            return [y, dx]
        }
        try assertSame("pooling") { b in
            let x = try self.input(b, shape, seed: 2), y = try b.allocate(g.outputShape), dx = try b.allocate(shape)
            let y2 = try b.allocate(g.outputShape), dx2 = try b.allocate(shape)
            let gy = try b.allocate([16, 16]), gdx = try b.allocate(shape)
            let ws = try b.allocateMaxPoolWorkspace(g)
            b.maxPoolForward(g, input: x, output: y, workspace: ws)
            b.maxPoolBackward(g, input: x, output: y, workspace: ws, gradOutput: y, gradInput: dx)
            b.avgPoolForward(g, input: x, output: y2); b.avgPoolBackward(g, gradOutput: y2, gradInput: dx2)
            b.globalAvgPoolForward(input: x, output: gy); b.globalAvgPoolBackward(gradOutput: gy, gradInput: gdx)
            return [y, dx, y2, dx2, gy, gdx]
        }
        try assertSame("batchnorm") { b in
            let x = try self.input(b, shape, seed: 3, low: 0, high: 2), y = try b.allocate(shape)
            let c = [16]
            let gamma = try self.input(b, c, seed: 4), beta = try self.input(b, c, seed: 5)
            let rm = try b.allocate(c), rv = try b.allocate(c), sm = try b.allocate(c), si = try b.allocate(c)
            let dx = try b.allocate(shape), dg = try b.allocate(c), db = try b.allocate(c), yi = try b.allocate(shape)
            b.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv,
                                       saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
            b.batchNormBackward(input: x, gradOutput: y, gamma: gamma, saveMean: sm, saveInvStd: si, gradInput: dx,
                                gradGamma: dg, gradBeta: db, mode: .accumulate, epsilon: 1e-5)
            b.batchNormForwardInference(input: x, output: yi, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv,
                                        epsilon: 1e-5)
            return [y, rm, rv, sm, si, dx, dg, db, yi]
        }
        try assertSame("softmax cross-entropy, argmax") { b in
            let z = try self.input(b, [4096, 10], seed: 6, low: -5, high: 5)
            let labels = try b.tensor((0..<4096).map { Float($0 % 10) }, shape: [4096])
            let loss = try b.allocate([4096]), grad = try b.allocate([4096, 10]), am = try b.allocate([4096])
            b.softmaxCrossEntropy(logits: z, labels: labels, losses: loss, gradLogits: grad, gradScale: 1.0 / 4096)
            b.argmax(rows: z, output: am)
            return [loss, grad, am]
        }
        try assertSame("random, dropout, optimizers, elementwise") { b in
            let x = try self.input(b, shape, seed: 7), y = try b.allocate(shape), m = try b.allocate(shape)
            let n = try b.allocate([100_001])
            b.fillNormal(n, mean: 0, std: 1, seed: 8, counter: 3)
            b.dropoutForward(x, output: y, mask: m, probability: 0.25, seed: 9, counter: 1)
            let p = try self.input(b, shape, seed: 10), s1 = try b.allocate(shape), s2 = try b.allocate(shape)
            b.adamUpdate(parameter: p, gradient: x, firstMoment: s1, secondMoment: s2, learningRate: 0.01, beta1: 0.9,
                         beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, decoupled: true, step: 1)
            b.axpy(alpha: 0.5, x: x, y: y)
            return [n, y, m, p, s1, s2]
        }
        try assertSame("augmentation, shortcut") { b in
            let x = try self.input(b, shape, seed: 11), y = try b.allocate(shape), z = try b.allocate(shape)
            b.randomCropFlip(x, output: y, padding: 4, allowFlip: true, seed: 12, counter: 5)
            b.normalizeChannels(x, output: z, mean: [Float](repeating: 0.1, count: 16), std: [Float](repeating: 0.3, count: 16))
            let s = try b.allocate([16, 32, 9, 9]), dx = try b.allocate(shape)
            b.shortcutPadForward(x, output: s, stride: 2, channelOffset: 8)
            b.shortcutPadBackward(gradOutput: s, gradInput: dx, stride: 2, channelOffset: 8)
            return [y, z, s, dx]
        }
        // The sum is the one kernel allowed to differ (per-thread Double partials); it must agree closely.
        let x = try input(many, [1_000_003], seed: 13)
        XCTAssertEqual(try one.sum(x), try many.sum(x), accuracy: 1e-3)
    }
}
