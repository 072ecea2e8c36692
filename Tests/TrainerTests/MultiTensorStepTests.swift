import XCTest
import Foundation
import GPUTensor
@testable import Trainer

/// A CPU backend that has `MultiTensorOptimizerKernels`, by running the per-tensor kernels of
/// each entry in turn: what the CUDA backend's one launch computes, so the trainer's packing and
/// dispatch (which tensors, which learning rates, which step) is checked without a GPU.
private final class MultiTensorCPU: ForwardingBackend, MultiTensorOptimizerKernels {
    private(set) var multiCalls = 0
    private(set) var singleCalls = 0
    private(set) var entriesPerCall: [Int] = []

    init() { super.init(wrapping: CPUBackend()) }

    func sgdUpdateAll(_ entries: [(parameter: Tensor, gradient: Tensor, velocity: Tensor?, learningRate: Float)],
                      momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        multiCalls += 1
        entriesPerCall.append(entries.count)
        for e in entries {
            base.sgdUpdate(parameter: e.parameter, gradient: e.gradient, velocity: e.velocity, learningRate: e.learningRate,
                           momentum: momentum, weightDecay: wd, nesterov: nesterov)
        }
    }

    func adamUpdateAll(_ entries: [(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor, learningRate: Float)],
                       beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int) {
        multiCalls += 1
        entriesPerCall.append(entries.count)
        for e in entries {
            base.adamUpdate(parameter: e.parameter, gradient: e.gradient, firstMoment: e.firstMoment, secondMoment: e.secondMoment,
                            learningRate: e.learningRate, beta1: beta1, beta2: beta2, epsilon: eps, weightDecay: wd,
                            decoupled: decoupled, step: step)
        }
    }

    override func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float,
                            momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        singleCalls += 1
        super.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr, momentum: momentum,
                        weightDecay: wd, nesterov: nesterov)
    }

    override func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                             learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float,
                             decoupled: Bool, step: Int) {
        singleCalls += 1
        super.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr, beta1: beta1,
                         beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step)
    }

    override func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                                learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        singleCalls += 1
        super.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr, alpha: alpha,
                            epsilon: eps, momentum: momentum, weightDecay: wd)
    }
}

final class MultiTensorStepTests: XCTestCase {
    private static let shapes: [(name: String, shape: [Int])] = [
        ("conv.weight", [4, 3, 3, 3]), ("bn.weight", [4]), ("bn.bias", [4]), ("fc.weight", [10, 37]), ("fc.bias", [10]),
    ]

    private func values(_ n: Int, seed: Int) -> [Float] {
        (0..<n).map { i in Float(Int((i * 7919 + seed * 104_729) % 2001) - 1000) / 731 }
    }

    /// Five steps of `config` on `backend`: a changing learning rate (a schedule), a learning-rate
    /// multiplier on one tensor, a tensor frozen for the first two steps (its state starts late)
    /// and new gradients each step. Returns every parameter's and state tensor's bits.
    private func run(_ config: OptimizerConfig, on backend: Backend, mode: MultiTensorMode = .on) throws -> [String: [UInt32]] {
        var config = config
        config.learningRateScales = ["fc.weight": 0.5]
        let optimizer = Optimizer(config, backend: backend)
        optimizer.multiTensorMode = .success(mode)
        let params = try Self.shapes.enumerated().map { i, p in
            (name: p.name, value: try backend.tensor(values(p.shape.reduce(1, *), seed: i), shape: p.shape),
             grad: try backend.allocate(p.shape))
        }
        for step in 0..<5 {
            for (i, p) in params.enumerated() { backend.upload(values(p.grad.count, seed: 100 * step + i + 1), to: p.grad) }
            let lr = config.learningRate * (1 - 0.15 * Float(step))
            let trainable = step < 2 ? params.filter { $0.name != "bn.bias" } : params
            try optimizer.step(trainable, learningRate: lr)
        }
        var out: [String: [UInt32]] = [:]
        for p in params { out[p.name] = try backend.download(p.value).map(\.bitPattern) }
        for s in optimizer.namedState() { out["state." + s.name] = try backend.download(s.tensor).map(\.bitPattern) }
        XCTAssertEqual(optimizer.stepCount, 5)
        return out
    }

    private static let configs: [(String, OptimizerConfig)] = [
        ("sgd momentum", .sgd(learningRate: 0.1, momentum: 0.9, nesterov: false, weightDecay: 5e-4)),
        ("sgd nesterov", .sgd(learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4)),
        ("sgd plain", .sgd(learningRate: 0.1, momentum: 0, nesterov: false, weightDecay: 1e-3)),
        ("adam l2", .adam(learningRate: 1e-2, weightDecay: 1e-2)),
        ("adamw", .adam(learningRate: 1e-2, weightDecay: 1e-2, decoupled: true)),
    ]

    /// The multi-tensor step gives the per-tensor step's bits (a plain CPU backend's, and the
    /// fake's own with the switch off), with one call a step and no per-tensor update.
    func testMultiTensorStepsEqualThePerTensorStepsBitForBit() throws {
        for (label, config) in Self.configs {
            let reference = try run(config, on: CPUBackend())
            let multi = MultiTensorCPU()
            let got = try run(config, on: multi)
            XCTAssertEqual(multi.multiCalls, 5, label)
            XCTAssertEqual(multi.singleCalls, 0, label)
            XCTAssertEqual(multi.entriesPerCall, [4, 4, 5, 5, 5], "\(label): frozen tensors are not passed")
            XCTAssertEqual(Set(got.keys), Set(reference.keys), label)
            for (name, bits) in reference { assertSameBits(got[name], bits, "\(label): \(name)") }

            let off = MultiTensorCPU()
            XCTAssertEqual(try run(config, on: off, mode: .off), reference, "\(label) with the switch off")
            XCTAssertEqual(off.multiCalls, 0, label)
            XCTAssertEqual(off.singleCalls, 4 + 4 + 5 + 5 + 5, label)

            // The steps did move the weights, so the comparison can fail.
            let start = Self.shapes.enumerated().map { i, p in values(p.shape.reduce(1, *), seed: i).map(\.bitPattern) }
            for (i, p) in Self.shapes.enumerated() { XCTAssertNotEqual(got[p.name], start[i], "\(label): \(p.name)") }
        }
    }

    /// RMSProp has no multi-tensor kernel: it keeps the per-tensor updates on any backend.
    func testRMSPropStaysPerTensor() throws {
        let config = OptimizerConfig.rmsprop(learningRate: 1e-3)
        let multi = MultiTensorCPU()
        XCTAssertEqual(try run(config, on: multi), try run(config, on: CPUBackend()))
        XCTAssertEqual(multi.multiCalls, 0)
        XCTAssertEqual(multi.singleCalls, 23)
    }

    /// Parameters that share memory are updated one after another, as before (one launch would
    /// run them together); views side by side in one storage still go in one call.
    func testParametersSharingMemoryFallBackToPerTensorUpdates() throws {
        let backend = MultiTensorCPU()
        let flat = try backend.tensor(values(12, seed: 1), shape: [12])
        let g = try backend.tensor(values(12, seed: 2), shape: [12])
        func view(_ t: Tensor, _ offset: Int, _ n: Int) -> Tensor { Tensor(storage: t.storage, offset: offset, shape: [n]) }

        let apart = Optimizer(.sgd(), backend: backend)
        try apart.step([(name: "a", value: view(flat, 0, 6), grad: view(g, 0, 6)),
                        (name: "b", value: view(flat, 6, 6), grad: view(g, 6, 6))], learningRate: 0.1)
        XCTAssertEqual(backend.multiCalls, 1)
        XCTAssertEqual(backend.singleCalls, 0)

        let tied = Optimizer(.sgd(), backend: backend)
        try tied.step([(name: "a", value: view(flat, 0, 7), grad: view(g, 0, 7)),
                       (name: "b", value: view(flat, 6, 6), grad: view(g, 6, 6))], learningRate: 0.1)
        XCTAssertEqual(backend.multiCalls, 1, "overlapping parameters take the per-tensor path")
        XCTAssertEqual(backend.singleCalls, 2)

        XCTAssertFalse(Optimizer.anyOverlap([[view(flat, 0, 6), view(flat, 0, 6)], [view(flat, 6, 6)]]),
                       "a group's own tensors may alias (a gradient that is its parameter)")
        XCTAssertTrue(Optimizer.anyOverlap([[view(flat, 0, 3)], [view(g, 0, 12)], [view(flat, 2, 1)]]))
        XCTAssertFalse(Optimizer.anyOverlap([[view(flat, 0, 0)], [view(flat, 0, 12)]]), "empty tensors overlap nothing")
    }

    /// `STRATA_MULTI_TENSOR`: on, off, unset or empty (on); anything else is one clear error,
    /// raised by a step only where the switch matters (not on the CPU).
    func testTheSwitchParsesAndABadValueIsOneClearError() throws {
        XCTAssertEqual(try MultiTensorMode.parse(nil).get(), .on)
        XCTAssertEqual(try MultiTensorMode.parse("").get(), .on)
        XCTAssertEqual(try MultiTensorMode.parse("on").get(), .on)
        XCTAssertEqual(try MultiTensorMode.parse("off").get(), .off)
        // The variable itself (set only for these lines: tests run one at a time).
        setenv(MultiTensorMode.variable, "off", 1)
        XCTAssertEqual(try Optimizer(.sgd(), backend: MultiTensorCPU()).multiTensorMode.get(), .off)
        unsetenv(MultiTensorMode.variable)
        XCTAssertEqual(try Optimizer(.sgd(), backend: MultiTensorCPU()).multiTensorMode.get(), .on)
        let bad = MultiTensorMode.parse("yes")
        XCTAssertEqual(bad.failure?.description, "STRATA_MULTI_TENSOR is 'yes': use on or off")

        let w = [(name: "w", value: try CPUBackend().tensor([1, 2] as [Float], shape: [2]), grad: try CPUBackend().tensor([1, 1] as [Float], shape: [2]))]
        let cpu = Optimizer(.sgd(), backend: CPUBackend())
        cpu.multiTensorMode = bad
        XCTAssertNoThrow(try cpu.step(w, learningRate: 0.1))
        let multi = Optimizer(.sgd(), backend: MultiTensorCPU())
        multi.multiTensorMode = bad
        XCTAssertThrowsError(try multi.step(w, learningRate: 0.1)) { XCTAssertEqual($0 as? MultiTensorModeError, MultiTensorModeError(value: "yes")) }
        XCTAssertEqual(multi.stepCount, 0, "a refused step does not count")
    }

    /// A whole training run (cnn, SGD with Nesterov and weight decay, cosine schedule with
    /// warm-up) through the multi-tensor step ends with the per-tensor run's bits.
    func testATrainingRunThroughTheMultiTensorStepEqualsThePerTensorRun() throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 48, test: 8)
        for optimizer in [OptimizerConfig.sgd(learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4),
                          .adam(learningRate: 1e-3, weightDecay: 1e-2, decoupled: true)] {
            let config = smallConfig(data: data, epochs: 2, optimizer: optimizer)
            let cpu = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
            let backend = MultiTensorCPU()
            let multi = try TrainingRun(config: config, backend: backend, data: RunData.load(config.data, seed: config.seed))
            for _ in 0..<2 {
                try cpu.trainEpoch()
                try multi.trainEpoch()
            }
            XCTAssertEqual(backend.singleCalls, 0)
            XCTAssertEqual(backend.multiCalls, multi.optimizer.stepCount)
            XCTAssertGreaterThan(backend.multiCalls, 0)
            XCTAssertEqual(try stateValues(multi), try stateValues(cpu), "\(optimizer.kind)")
            XCTAssertEqual(multi.history.map(\.trainLoss), cpu.history.map(\.trainLoss))
        }
    }
}

/// Fails naming the first element that differs (the arrays themselves are too long to print).
private func assertSameBits(_ got: [UInt32]?, _ want: [UInt32], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let got else { return XCTFail("\(what): missing", file: file, line: line) }
    guard got.count == want.count else { return XCTFail("\(what): \(got.count) values, want \(want.count)", file: file, line: line) }
    if let i = got.indices.first(where: { got[$0] != want[$0] }) {
        XCTFail("\(what): element \(i) of \(want.count) is \(Float(bitPattern: got[i])), want \(Float(bitPattern: want[i]))",
                file: file, line: line)
    }
}

private extension Result {
    var failure: Failure? { if case .failure(let e) = self { return e } else { return nil } }
}
