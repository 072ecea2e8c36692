import XCTest
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
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

    /// A parameter's learning-rate multiplier is exactly a step at lr x multiplier; the others
    /// step at lr. Configs without multipliers (every file written before them) decode to nil.
    func testLearningRateScalesMultiplyTheStepOfTheirParameterOnly() throws {
        let cpu = CPUBackend()
        let g = try cpu.tensor([0.5, -1, 2, 0.25, 0, -3] as [Float], shape: [2, 3])
        func stepped(_ config: OptimizerConfig, lr: Float) throws -> (w: [Float], v: [Float]) {
            let w = try cpu.tensor([Float](repeating: 1, count: 6), shape: [2, 3])
            let v = try cpu.tensor([Float](repeating: 1, count: 6), shape: [2, 3])
            let o = Optimizer(config, backend: cpu)
            for _ in 0..<3 { try o.step([(name: "w", value: w, grad: g), (name: "v", value: v, grad: g)], learningRate: lr) }
            return (try cpu.download(w), try cpu.download(v))
        }
        for kind in [OptimizerConfig.Kind.adam, .rmsprop, .sgd] {
            var scaled = OptimizerConfig(kind: kind, learningRate: 1e-2, momentum: kind == .adam ? 0 : 0.9)
            let plain = scaled
            scaled.learningRateScales = ["w": 2]   // exact: 2 x lr is 2e-2 to the bit
            let s = try stepped(scaled, lr: 1e-2), atBase = try stepped(plain, lr: 1e-2), atScaled = try stepped(plain, lr: 2e-2)
            XCTAssertEqual(s.w, atScaled.w, "\(kind): w stepped at 2 x lr")
            XCTAssertEqual(s.v, atBase.v, "\(kind): v has no multiplier")
            XCTAssertNotEqual(s.w, atBase.w, "\(kind)")
            XCTAssertEqual(try JSONDecoder().decode(OptimizerConfig.self, from: JSONEncoder().encode(scaled)), scaled)
        }
        let old = #"{"kind":"adam","learningRate":0.001,"momentum":0,"nesterov":false,"weightDecay":0}"#
        XCTAssertNil(try JSONDecoder().decode(OptimizerConfig.self, from: Data(old.utf8)).learningRateScales)
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(OptimizerConfig.adam()), as: UTF8.self).contains("learningRateScales"),
                       "configs without multipliers are written as before")
    }
}
