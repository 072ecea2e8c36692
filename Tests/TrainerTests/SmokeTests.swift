import XCTest
@testable import Trainer
final class TrainerSmokeTests: XCTestCase { func testVersion() { XCTAssertFalse(TrainerVersion.string.isEmpty) } }
