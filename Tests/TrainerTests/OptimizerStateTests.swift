import XCTest
import GPUTensor
@testable import Trainer

final class OptimizerStateTests: XCTestCase {
    func testAdoptStateCopiesMatchingMomentsOnly() throws {
        let cpu = CPUBackend()
        let w = try cpu.tensor([Float](repeating: 1, count: 6), shape: [2, 3])
        let g = try cpu.tensor([0.5, -1, 2, 0.25, 0, -3] as [Float], shape: [2, 3])
        let b = try cpu.tensor([1, 2] as [Float], shape: [2])
        let old = Optimizer(.rmsprop(learningRate: 1e-3), backend: cpu)
        try old.step([(name: "w", value: w, grad: g), (name: "b", value: b, grad: b)], learningRate: 1e-3)
        try old.step([(name: "w", value: w, grad: g)], learningRate: 1e-3)

        let grown = Optimizer(.rmsprop(learningRate: 1e-3), backend: cpu)
        let wider = try cpu.allocate([3])   // "b" changed shape in the grown model
        try grown.adoptState(from: old, parameters: [(name: "w", value: w), (name: "b", value: wider)])
        XCTAssertEqual(grown.stepCount, 2)
        XCTAssertEqual(try cpu.download(grown.state["w"]![0]), try cpu.download(old.state["w"]![0]))
        XCTAssertEqual(try cpu.download(grown.state["w"]![1]), try cpu.download(old.state["w"]![1]))
        XCTAssertNil(grown.state["b"], "a parameter whose shape changed starts fresh")
        // Copies, not shared buffers: the grown optimizer's updates leave the old state alone.
        let before = try cpu.download(old.state["w"]![0])
        try grown.step([(name: "w", value: w, grad: g)], learningRate: 1e-3)
        XCTAssertEqual(try cpu.download(old.state["w"]![0]), before)
        XCTAssertNotEqual(try cpu.download(grown.state["w"]![0]), before)
    }
}
