import XCTest
@testable import Trainer

/// `OptimizerConfig.named`: the one place an optimizer name becomes a configuration.
final class OptimizerConfigTests: XCTestCase {
    func testNamedDefaults() throws {
        XCTAssertEqual(try OptimizerConfig.named("sgd"), .sgd(learningRate: 0.1, momentum: 0.9, nesterov: false, weightDecay: 1e-4))
        let rms = try OptimizerConfig.named("rmsprop")
        XCTAssertEqual([rms.learningRate, rms.momentum, rms.weightDecay, rms.alpha, rms.epsilon], [1e-4, 0.9, 1e-4, 0.9, 1e-7])
        let adam = try OptimizerConfig.named("adam")
        XCTAssertEqual(adam.kind, .adam)
        XCTAssertEqual([adam.learningRate, adam.weightDecay, adam.epsilon, adam.beta1, adam.beta2], [1e-3, 0, 1e-8, 0.9, 0.999])
        let adamw = try OptimizerConfig.named("adamw")
        XCTAssertEqual(adamw.kind, .adamw)
        XCTAssertEqual(adamw.weightDecay, 1e-2)
        // Given values win; the rest stays default.
        let sgd = try OptimizerConfig.named("sgd", learningRate: 0.05, momentum: 0, nesterov: true, weightDecay: 0)
        XCTAssertEqual(sgd, .sgd(learningRate: 0.05, momentum: 0, nesterov: true, weightDecay: 0))
        XCTAssertThrowsError(try OptimizerConfig.named("lamb")) { error in
            XCTAssertEqual("\(error)", "optimizer 'lamb' is not one of sgd, rmsprop, adam, adamw")
        }
    }

    /// A config.json written before alpha and epsilon were stored keeps RMSProp's old values.
    func testStoredConfigsKeepTheirMeaning() throws {
        let old = Data(#"{"kind":"rmsprop","learningRate":0.0001,"momentum":0.9,"nesterov":false,"weightDecay":0.0001}"#.utf8)
        XCTAssertEqual(try JSONDecoder().decode(OptimizerConfig.self, from: old), try OptimizerConfig.named("rmsprop"))
    }

    /// A search trial trains as it always did: no weight decay, rmsprop without momentum.
    func testSearchTrialsKeepTheirOptimizer() throws {
        func optimizer(_ name: String) throws -> OptimizerConfig {
            let trial = TrialConfig(convLayers: 1, filters: 4, kernel: 3, hidden: [8], lr: 0.01, batchSize: 8, epochs: 1, optimizer: name)
            return try trial.trainConfig(data: DataConfig(kind: "cifar10", path: "/nonexistent"),
                                         input: ImageShape(channels: 3, height: 32, width: 32), classes: 10,
                                         device: "cpu", reuse: nil).optimizer
        }
        XCTAssertEqual(try optimizer("adam"), .adam(learningRate: 0.01, weightDecay: 0))
        XCTAssertEqual(try optimizer("sgd"), .sgd(learningRate: 0.01, momentum: 0.9, nesterov: false, weightDecay: 0))
        XCTAssertEqual(try optimizer("rmsprop"), .rmsprop(learningRate: 0.01, momentum: 0, weightDecay: 0))
        XCTAssertThrowsError(try optimizer("adamw"))
    }

    /// An hpo space that searches the optimizer: lr, momentum and weight decay carry over in
    /// any order; alpha and epsilon are the chosen optimizer's own.
    func testSwitchingTheOptimizerKeepsTheSearchedValues() throws {
        var base = try OptimizerConfig.named("adam", learningRate: 0.002)
        base.learningRateScales = ["fc.weight": 2]
        let rms = base.switched(to: .rmsprop)
        XCTAssertEqual(rms.kind, .rmsprop)
        XCTAssertEqual(rms.learningRate, 0.002)
        XCTAssertEqual(rms.learningRateScales, ["fc.weight": 2])
        XCTAssertEqual([rms.alpha, rms.epsilon], [0.9, 1e-7], "the alpha and epsilon of strata train --optimizer rmsprop")
        XCTAssertEqual(rms.switched(to: .adam).epsilon, 1e-8)
        XCTAssertEqual(base.switched(to: .adam), base)
        let space: [String: HPOValue] = ["optimizer": .choice("rmsprop"), "lr": .float(0.01), "momentum": .float(0.5)]
        var train = smallConfigForOptimizer()
        train.optimizer = base
        let a = try HPOParameter.apply(space, to: train).optimizer
        XCTAssertEqual([a.learningRate, a.momentum, a.alpha], [0.01, 0.5, 0.9])
    }

    private func smallConfigForOptimizer() -> TrainConfig {
        smallConfig(data: "/nonexistent", optimizer: .adam(learningRate: 1e-3))
    }
}
