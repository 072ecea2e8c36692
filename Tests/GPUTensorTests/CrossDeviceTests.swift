import XCTest
import GPUTensor

/// The cross-device checks themselves, run CPU against CPU: every comparison must pass exactly
/// (same code on both sides), which shows the harness feeds both backends the same inputs.
/// On a GPU machine `strata selftest --device cuda` runs them CUDA against CPU.
final class CrossDeviceTests: XCTestCase {
    func testCPUAgainstCPUPasses() throws {
        let cpu = CPUBackend(), other = CPUBackend()
        var count = 0
        for check in KernelChecks.crossDevice(reference: other) {
            for result in try check.run(cpu) {
                count += 1
                XCTAssertTrue(result.passed, result.summary)
                XCTAssertEqual(result.worstRatio, 0, result.summary)
            }
        }
        XCTAssertGreaterThan(count, 50)
    }
}
