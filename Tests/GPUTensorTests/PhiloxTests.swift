import XCTest
@testable import GPUTensor
final class PhiloxTests: XCTestCase {
    func testPhiloxKnownAnswer() {
        // Random123 known-answer vector for philox4x32-10, key and counter all zeros.
        let b = Philox.block(seed: 0, counter: 0, index: 0)
        XCTAssertEqual([b.0, b.1, b.2, b.3], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8])
    }
}
