import Foundation
import XCTest
import GPUTensor
@testable import Trainer

/// Batch norm + ReLU fused (`LayerFusion`) against the layers run one by one. On the CPU the fused
/// kernels do the same float operations in the same order (`relu(bn(x))`; the mask `y > 0` is
/// `bn(x) > 0`), so results must be BIT-IDENTICAL, not close: training, evaluation, frozen
/// prefixes (inference-mode batch norm with an input gradient, as Synflow runs it).
final class LayerFusionTests: XCTestCase {
    private var saved = (LayerFusion.enabled, LayerFusion.residualAdd)
    override func setUp() { saved = (LayerFusion.enabled, LayerFusion.residualAdd) }
    override func tearDown() { (LayerFusion.enabled, LayerFusion.residualAdd) = saved }

    /// Runs `body` with fusion on, then off; returns both results.
    private func both<R>(_ body: () throws -> R) rethrows -> (fused: R, unfused: R) {
        LayerFusion.enabled = true
        let fused = try body()
        LayerFusion.enabled = false
        let unfused = try body()
        return (fused, unfused)
    }

    /// Two epochs of two batches each (with augmentation and SGD + momentum), then the checkpoint's
    /// bytes, the losses, the evaluation; the fused run really ran the fused kernels.
    private func checkTrainingIsBitIdentical(_ model: ModelSpec, name: String) throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 40, test: 12)
        var config = smallConfig(data: data, epochs: 2)
        config.modelName = name
        config.model = model
        let runs = try both { () -> (bytes: [UInt8], losses: [Double], test: Double?, fusedCalls: Int, reluCalls: Int,
                                     residualCalls: Int, adds: Int) in
            let dir = RunDirectory(path: try makeTemporaryDirectory(self))
            let recorder = RecordingBackend(CPUBackend())
            let run = try TrainingRun(config: config, backend: recorder, data: RunData.load(config.data, seed: config.seed))
            let summary = try run.fit(in: dir)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.lastCheckpointPath)))
            return (bytes, run.history.map(\.trainLoss), summary.testLoss,
                    recorder.count("batchNormReLUForwardTraining") + recorder.count("batchNormReLUBackward"),
                    recorder.count("reluForward"), recorder.count("batchNormAddReLUForwardTraining"), recorder.count("add"))
        }
        if model.family == .resnet {
            XCTAssertGreaterThan(runs.fused.residualCalls, 0, "\(name): bn2 + shortcut + ReLU fused")
            XCTAssertEqual(runs.fused.adds, 0, "\(name): no residual add of its own")
            XCTAssertEqual(runs.unfused.residualCalls, 0)
        }
        XCTAssertGreaterThan(runs.fused.fusedCalls, 0, "\(name): the fused kernels ran")
        XCTAssertEqual(runs.unfused.fusedCalls, 0, "\(name): STRATA_FUSE=off runs no fused kernel")
        XCTAssertLessThan(runs.fused.reluCalls, runs.unfused.reluCalls, "\(name): fused ReLUs cost no kernel")
        XCTAssertEqual(runs.fused.losses, runs.unfused.losses, name)
        XCTAssertEqual(runs.fused.test, runs.unfused.test, name)
        XCTAssertFalse(runs.fused.bytes.isEmpty)
        XCTAssertTrue(runs.fused.bytes == runs.unfused.bytes, "\(name): checkpoints differ")
    }

    func testResNet20TrainsBitIdenticallyFused() throws {
        try checkTrainingIsBitIdentical(ModelSpec(family: .resnet, input: .cifar, classes: 10,
                                                  resnet: ResNetOptions(depth: 20, width: 4)), name: "resnet20")
    }

    /// Option B (projection shortcut: the residual is a batch norm's output), batch norm + ReLU
    /// fused but not the residual add (`STRATA_FUSE=bn-relu`) against everything fused.
    func testResNetOptionBAndPartialFusionAreBitIdentical() throws {
        let spec = ModelSpec(family: .resnet, input: .cifar, classes: 10, resnet: ResNetOptions(depth: 8, shortcut: .b, width: 4))
        try checkTrainingIsBitIdentical(spec, name: "resnet8 option B")
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 40, test: 12)
        var config = smallConfig(data: data, epochs: 1)
        config.model = spec
        func losses(residual: Bool) throws -> [Double] {
            LayerFusion.enabled = true
            LayerFusion.residualAdd = residual
            defer { LayerFusion.residualAdd = true }
            let run = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
            _ = try run.fit(in: RunDirectory(path: try makeTemporaryDirectory(self)))
            return run.history.map(\.trainLoss) + (try run.model.stateDict.flatMap { try run.backend.download($0.tensor).map(Double.init) })
        }
        let all = try losses(residual: true), partial = try losses(residual: false)
        XCTAssertEqual(all.count, partial.count)
        XCTAssertTrue(all == partial, "losses and state differ with STRATA_FUSE=bn-relu")
    }

    func testVGGTrainsBitIdenticallyFused() throws {
        try checkTrainingIsBitIdentical(.vgg(VGGOptions(groups: [[8], [8, 16], [16]], head: .paper, hidden: 16),
                                             input: .cifar, classes: 10), name: "vgg")
    }

    /// Synflow: batch norms frozen (inference forward, fused with their ReLU), a backward through
    /// them with input gradients: the fused path's frozen backward (mask, then the scale).
    func testSynflowScoresAreBitIdenticalFused() throws {
        let spec = ModelSpec(family: .resnet, input: ImageShape(channels: 3, height: 8, width: 8), classes: 5,
                             resnet: ResNetOptions(depth: 8, width: 4))
        let scores = try both { try Synflow.channelScores(of: Model(spec: spec), seed: 5, backend: CPUBackend()) }
        XCTAssertEqual(scores.fused, scores.unfused)
        XCTAssertFalse(scores.fused.isEmpty)
    }

    /// One stem (conv, BN, in-place ReLU) forward and backward on inputs that put many values at
    /// and below zero: output, input gradient and every parameter gradient, bit for bit; and the
    /// frozen case (inference-mode BN with an input gradient).
    func testStemForwardBackwardIsBitIdentical() throws {
        for frozen in [false, true] {
            let r = try both { () -> [[Float]] in
                let backend = CPUBackend()
                let stem = Sequential([Conv2D(name: "conv1", inChannels: 3, outChannels: 12, kernel: 3, padding: 1, bias: false),
                                       BatchNorm2D(name: "bn1", channels: 12), ReLU()])
                try stem.prepare(input: [3, 6, 6], maxBatch: 4, backend: backend)
                for p in stem.parameters { p.initialize(seed: 3, backend: backend) }
                for b in stem.buffers { b.initialize(seed: 3, backend: backend) }
                if frozen {
                    (stem.layers[1] as! BatchNorm2D).setFrozen(true)
                    backend.upload((0..<12).map { 0.5 + Float($0) / 10 }, to: stem.buffers[1].value)
                }
                let x = try backend.tensor((0..<(4 * 3 * 36)).map { sin(Float($0) * 0.37) }, shape: [4, 3, 6, 6])
                let y = stem.forward(x, mode: .training)
                let out = try backend.download(y)
                let dy = try backend.tensor((0..<y.count).map { cos(Float($0) * 0.91) }, shape: y.shape)
                let dx = stem.backward(dy, computeInputGradient: true)!
                return [out, try backend.download(dx)] + (try stem.parameters.map { try backend.download($0.grad) })
                    + (try stem.buffers.map { try backend.download($0.value) })
            }
            XCTAssertEqual(r.fused, r.unfused, "frozen \(frozen)")
            XCTAssertTrue(r.fused[0].contains(0) && r.fused[0].contains { $0 > 0 }, "the ReLU cuts")
        }
    }
}
