import XCTest
import GPUTensor
@testable import Trainer

/// Flatten keeps PyTorch's (C, H, W) order whatever order the backend stores rank-4 tensors in
/// (the CPU: channels-last), so the dense weights after it load into PyTorch unchanged.
final class FlattenTests: XCTestCase {
    func testFlattenIsTorchFlattenAndBackwardIsItsInverse() throws {
        let backend = CPUBackend(threads: 2)
        let flatten = Flatten()
        try flatten.prepare(input: [3, 4, 5], maxBatch: 4, backend: backend)
        // A smaller batch than prepared: the buffers' first rows.
        let values = (0..<(2 * 60)).map(Float.init)
        let x = try backend.tensor(values, shape: [2, 3, 4, 5])
        let y = flatten.forward(x, mode: .training)
        XCTAssertEqual(y.shape, [2, 60])
        XCTAssertEqual(try backend.download(y), values, "row n of y is torch.flatten(x, 1)[n]")
        let dy = try backend.tensor(values.map { -$0 }, shape: [2, 60])
        let dx = try XCTUnwrap(flatten.backward(dy, computeInputGradient: true))
        XCTAssertEqual(dx.shape, [2, 3, 4, 5])
        XCTAssertEqual(try backend.download(dx), values.map { -$0 })
        XCTAssertNil(flatten.backward(dy, computeInputGradient: false))
    }
}
