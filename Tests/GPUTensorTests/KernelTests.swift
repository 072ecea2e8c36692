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
    func testShortcut() { assertPasses("shortcut option A", minimum: 15) }
}
