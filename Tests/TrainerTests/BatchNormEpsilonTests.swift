import XCTest
import GPUTensor
@testable import Trainer

/// cuDNN asks for the same epsilon in batch-norm forward and backward: the layer hands the
/// backend its own epsilon in both (the CUDA backend once passed 1e-5 to backward whatever the
/// forward used).
final class BatchNormEpsilonTests: XCTestCase {
    func testBackwardGetsTheForwardsEpsilon() throws {
        for epsilon: Float in [1e-5, 1e-3] {
            let backend = RecordingBackend(CPUBackend())
            let bn = BatchNorm2D(name: "bn", channels: 3, epsilon: epsilon)
            try bn.prepare(input: [3, 4, 4], maxBatch: 2, backend: backend)
            let x = try backend.tensor((0..<96).map { Float($0 % 7) / 7 }, shape: [2, 3, 4, 4])
            let y = bn.forward(x, mode: .training)
            _ = bn.backward(y, computeInputGradient: true)
            XCTAssertEqual(backend.batchNormEpsilons.map(\.kernel), ["batchNormForwardTraining", "batchNormBackward"])
            XCTAssertEqual(backend.batchNormEpsilons.map(\.epsilon), [epsilon, epsilon])
        }
    }

    /// The same with the ReLU after it fused into the batch norm's kernels.
    func testFusedBackwardGetsTheForwardsEpsilon() throws {
        for epsilon: Float in [1e-5, 1e-3] {
            let backend = RecordingBackend(CPUBackend())
            let bn = BatchNorm2D(name: "bn", channels: 3, epsilon: epsilon), relu = ReLU()
            try bn.prepare(input: [3, 4, 4], maxBatch: 2, backend: backend)
            try relu.prepare(input: [3, 4, 4], maxBatch: 2, backend: backend)
            let x = try backend.tensor((0..<96).map { Float($0 % 7) / 7 - 0.4 }, shape: [2, 3, 4, 4])
            let y = bn.forward(x, mode: .training, fusing: relu)
            _ = bn.backward(relu.backward(y, computeInputGradient: true)!, computeInputGradient: true)
            XCTAssertEqual(backend.batchNormEpsilons.map(\.kernel), ["batchNormReLUForwardTraining", "batchNormReLUBackward"])
            XCTAssertEqual(backend.batchNormEpsilons.map(\.epsilon), [epsilon, epsilon])
        }
    }
}
