import XCTest
import GPUTensor
@testable import Trainer

/// The run summary's test figures are those of the checkpoint `strata eval` uses by default
/// (the best), and say so; the last epoch's go beside them.
final class SummaryCheckpointTests: XCTestCase {
    func testSummaryEvaluatesTheBestCheckpointAndPutsTheModelBack() throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 72, test: 20)
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        var config = smallConfig(data: data, epochs: 3)   // its schedule spans 3 epochs
        config.epochs = 1
        try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed)).fit(in: dir)
        // Epoch 1's checkpoint, kept aside as if it were the best of a longer run.
        let epochOne = try makeTemporaryDirectory(self) + "/epoch-0001.safetensors"
        try writeBytes(try FileSystem.readFile(dir.lastCheckpointPath), to: epochOne)
        let run = try TrainingRun.resume(from: dir, backend: CPUBackend(), epochs: 3)
        try run.fit(in: dir)
        let before = try stateValues(run)

        let summary = try run.summarize(seconds: 0, best: (epochOne, 1), last: dir.lastCheckpointPath)
        func eval(_ path: String) throws -> Evaluation {
            let r = try TrainingRun.forEvaluation(checkpoint: path, dataPath: nil, backend: CPUBackend(), batchSize: 32)
            return try r.evaluate(r.data.test!)
        }
        let best = try eval(epochOne), last = try eval(dir.lastCheckpointPath)
        XCTAssertEqual(summary.testCheckpoint, "best")
        XCTAssertEqual(summary.testEpoch, 1)
        XCTAssertEqual(summary.testLoss!, best.loss, accuracy: 1e-5)
        XCTAssertEqual(summary.testAccuracy!, best.accuracy, accuracy: 1e-12)
        XCTAssertEqual(summary.lastTestLoss!, last.loss, accuracy: 1e-5)
        XCTAssertNotEqual(best.loss, last.loss, "two epochs of training must change the test loss")
        // The run goes on with its own (last) weights, bit for bit.
        XCTAssertEqual(try stateValues(run).filter { !$0.key.hasPrefix("optimizer.") },
                       before.filter { !$0.key.hasPrefix("optimizer.") })

        // A search trial's summary: the best checkpoint's test figures only (one test pass, not
        // two), the same figures as above; the model still goes back to its last weights.
        run.testsLastEpoch = false
        let trial = try run.summarize(seconds: 0, best: (epochOne, 1), last: dir.lastCheckpointPath)
        XCTAssertNil(trial.lastTestLoss)
        XCTAssertNil(trial.lastTestAccuracy)
        XCTAssertEqual(trial.testLoss, summary.testLoss)
        XCTAssertEqual(trial.testAccuracy, summary.testAccuracy)
        XCTAssertEqual(trial.testCheckpoint, "best")
        XCTAssertEqual(try stateValues(run).filter { !$0.key.hasPrefix("optimizer.") },
                       before.filter { !$0.key.hasPrefix("optimizer.") })
        run.testsLastEpoch = true

        // Without another best checkpoint: the last one, named as best when it is the best.
        let plain = try run.summarize(seconds: 0, best: (dir.lastCheckpointPath, 3), last: dir.lastCheckpointPath)
        XCTAssertEqual(plain.testCheckpoint, "best")
        XCTAssertEqual(plain.testEpoch, 3)
        XCTAssertNil(plain.lastTestAccuracy)
        XCTAssertEqual(plain.testLoss!, last.loss, accuracy: 1e-5)
    }
}
