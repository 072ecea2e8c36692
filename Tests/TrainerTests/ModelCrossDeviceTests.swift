import XCTest
import GPUTensor
@testable import Trainer

/// The ResNet cross-device check of `strata selftest --device cuda`, run where there is no GPU:
/// CPU against CPU it must pass exactly; against a backend with a wrong SGD step it must fail.
final class ModelCrossDeviceTests: XCTestCase {
    func testCPUAgainstCPUMatchesExactly() throws {
        let results = try ModelCrossDevice.checks(reference: CPUBackend()).flatMap { try $0.run(CPUBackend()) }
        XCTAssertGreaterThan(results.count, 30, "loss, every model tensor and every velocity")
        XCTAssertTrue(results.contains { $0.name.contains("layer3.0.conv2.weight") })
        XCTAssertTrue(results.contains { $0.name.contains("bn1.running_var") })
        XCTAssertTrue(results.contains { $0.name.contains("optimizer.fc.weight") })
        for r in results {
            XCTAssertTrue(r.passed, r.summary)
            if r.name.contains("mean loss") {
                // The check rounds the actual (Double) mean loss to Float and compares it with the
                // expected Double: equal runs still differ by that rounding (~3e-8 of a loss ~2.3,
                // ~1e-6 of the allowance), unless the mean happens to be a float.
                XCTAssertLessThan(r.worstRatio, 1e-5, r.summary)
            } else {
                XCTAssertEqual(r.worstRatio, 0, r.summary)
            }
        }
    }

    func testAWrongOptimizerStepFails() throws {
        let broken = RecordingBackend(CPUBackend())
        broken.sgdLearningRateScale = 1.5
        let results = try ModelCrossDevice.checks(reference: CPUBackend()).flatMap { try $0.run(broken) }
        let failed = results.filter { !$0.passed }
        XCTAssertGreaterThan(failed.count, 0)
        XCTAssertTrue(failed.contains { $0.name.contains("weight") }, failed.map(\.summary).joined(separator: "\n"))
    }
}
