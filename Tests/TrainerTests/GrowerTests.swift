import XCTest
import GPUTensor
@testable import Trainer

final class GrowerTests: XCTestCase {
    var data = ""

    override func setUpWithError() throws {
        data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 80, test: 20)
    }

    func growConfig(initialization: GrowConfig.Initialization = .lookahead, maxEpochs: Int = 6) -> GrowConfig {
        let train = smallConfig(data: data, filters: [4, 6, 8], epochs: maxEpochs, dropout: 0)
        return GrowConfig(train: train, startStages: 1, window: 2, gamma: 0.5, initialization: initialization,
                          lookaheadEpochs: 1, maxEpochs: maxEpochs, maxEpochsPerStage: 2)
    }

    func testLookAheadChangesOnlyTheNewSubNetworkAndTheClassifier() throws {
        let config = growConfig()
        let grower = Grower(config: config, backend: CPUBackend(), data: try RunData.load(config.train.data, seed: 11))
        // A trained one-stage model, then sub-network 2 inserted.
        let first = try Model(spec: grower.spec(stages: 1))
        let run = try TrainingRun(config: config.train, backend: grower.backend, data: grower.data, model: {
            try first.prepare(on: grower.backend, maxBatch: 32); first.initialize(seed: 1); return first }())
        try run.trainEpoch()
        let (next, copied) = try grower.insertStage(after: first, stages: 1)
        XCTAssertGreaterThanOrEqual(copied, 2, "the trained conv weight and bias carry over")
        let before = try Dictionary(uniqueKeysWithValues: next.stateDict.map { ($0.name, try grower.backend.download($0.tensor)) })
        XCTAssertEqual(before["features.0.weight"], try grower.backend.download(first.parameter(named: "features.0.weight")!.value))

        let look = try grower.lookAhead(next, trainedStages: 1, epochsSoFar: 1)
        XCTAssertEqual(look.history.count, 1)
        XCTAssertEqual(next.frozenBlockCount, 0, "look-ahead unfreezes the model when it ends")
        let newStage = Set(next.blocks[next.stages[1].blocks].flatMap { $0.stateDict.map(\.name) })
        let classifier = Set(next.classifier.flatMap { $0.stateDict.map(\.name) })
        for (name, tensor) in next.stateDict {
            let after = try grower.backend.download(tensor)
            if newStage.contains(name) || classifier.contains(name) {
                if name.hasSuffix("weight") { XCTAssertNotEqual(after, before[name], "\(name) should train in look-ahead") }
            } else {
                XCTAssertEqual(after, before[name], "\(name) of the trained prefix changed during look-ahead")
            }
        }
        XCTAssertTrue(newStage.contains("features.3.weight"))
        // Backward never reached the prefix: its work shows up as skipped, not executed.
        XCTAssertEqual(look.ledger.counters(for: "stage1").backwardWeights, 0)
        XCTAssertGreaterThan(look.ledger.counters(for: "stage1").skippedFrozenBackward, 0)
    }

    func testGrowInsertsEveryStageWithinTheBudgetAndAccountsFlops() throws {
        let config = growConfig(maxEpochs: 8)
        let grower = Grower(config: config, backend: CPUBackend(), data: try RunData.load(config.train.data, seed: 11))
        var events: [String] = []
        grower.event = { events.append($0) }
        let (summary, model) = try grower.run()
        // maxEpochsPerStage 2 forces an insertion after 2 epochs of each stage; look-ahead adds 1.
        XCTAssertEqual(summary.stages.map(\.stages), [1, 2, 3])
        XCTAssertEqual(summary.stages.map(\.firstEpoch), [1, 3, 6])
        XCTAssertEqual(grower.history.map(\.phase), ["train", "train", "lookahead", "train", "train", "lookahead", "train", "train"])
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(model.stages.count, 3)
        XCTAssertEqual(grower.history.count, 8)
        // Cumulative FLOPs grow monotonically and end at the summary's total.
        let cumulative = grower.history.map(\.metrics.cumulativeTrainingFlops)
        XCTAssertEqual(cumulative, cumulative.sorted())
        XCTAssertEqual(cumulative.last!, summary.cumulativeTrainingFlops, accuracy: 1)
        // Inference cost rises with each inserted sub-network.
        XCTAssertLessThan(summary.stages[0].inferenceFlopsPerImage, summary.stages[1].inferenceFlopsPerImage)
        XCTAssertLessThan(summary.stages[1].inferenceFlopsPerImage, summary.stages[2].inferenceFlopsPerImage)
        XCTAssertNotNil(summary.testAccuracy)
    }

    func testRandomInitSkipsLookAhead() throws {
        let config = growConfig(initialization: .random, maxEpochs: 5)
        let grower = Grower(config: config, backend: CPUBackend(), data: try RunData.load(config.train.data, seed: 11))
        let (summary, _) = try grower.run()
        XCTAssertFalse(grower.history.contains { $0.phase == "lookahead" })
        XCTAssertEqual(summary.stages.map(\.firstEpoch), [1, 3, 5])
    }

    /// A grow run killed after any epoch and resumed from its last checkpoint ends with the same
    /// weights, stage table and per-epoch numbers as the uninterrupted run: through insertions,
    /// look-ahead and the end of the run.
    func testResumeFromEveryCheckpointEndsLikeTheUninterruptedRun() throws {
        let config = growConfig(maxEpochs: 8)
        let backend = CPUBackend()
        let data = try RunData.load(config.train.data, seed: 11)
        let directory = try makeTemporaryDirectory(self)
        // Through the fit loop into a run directory; each committed checkpoint kept aside.
        var paths: [String] = []
        let recorder = try RunRecorder(RunDirectory(path: directory + "/run"), kind: .grow, mode: .new)
        defer { recorder.close() }
        func keep() throws {
            let path = "\(directory)/checkpoint-\(paths.count).safetensors"
            try SafeTensors.read(from: XCTUnwrap(recorder.lastCheckpointPath)).write(to: path)
            paths.append(path)
        }
        var hooks = FitHooks()
        hooks.committed = { _ in try keep() }
        let grower = Grower(config: config, backend: backend, data: data)
        let (summary, model) = try grower.run(recorder: recorder, hooks: hooks)
        try keep()
        // One checkpoint per training epoch (look-ahead epochs have none) and one at the end.
        XCTAssertEqual(paths.count, grower.history.filter { $0.phase == "train" }.count + 1)
        let weights = try model.stateDict.map { ($0.name, try backend.download($0.tensor)) }

        func numbers(_ h: [GrowEpoch]) -> [String] {
            h.map { "\($0.epoch) \($0.stages) \($0.phase) \($0.metrics.trainLoss) \($0.metrics.validationAccuracy ?? -1) "
                + "\($0.metrics.cumulativeTrainingFlops) \($0.metrics.learningRate)" }
        }
        for (i, path) in paths.enumerated() {
            let again = Grower(config: config, backend: backend, data: data)
            var restored = -1
            let (s, m) = try again.run(resume: path, resumed: { history, _ in restored = history.count })
            XCTAssertGreaterThan(restored, 0, "checkpoint \(i)")
            XCTAssertEqual(s.stages, summary.stages, "checkpoint \(i)")
            XCTAssertEqual(s.cumulativeTrainingFlops, summary.cumulativeTrainingFlops, "checkpoint \(i)")
            XCTAssertEqual(s.testAccuracy, summary.testAccuracy, "checkpoint \(i)")
            if i < paths.count - 1 { XCTAssertEqual(numbers(again.history), numbers(grower.history), "checkpoint \(i)") }
            let w = try m.stateDict.map { ($0.name, try backend.download($0.tensor)) }
            XCTAssertEqual(w.map(\.0), weights.map(\.0), "checkpoint \(i)")
            for (a, b) in zip(w, weights) { XCTAssertEqual(a.1, b.1, "checkpoint \(i): \(a.0)") }
        }
    }

    func testResumeRejectsACheckpointWithoutGrowProgress() throws {
        let config = growConfig(maxEpochs: 2)
        let data = try RunData.load(config.train.data, seed: 11)
        let directory = try makeTemporaryDirectory(self)
        let run = try TrainingRun(config: config.train, backend: CPUBackend(), data: data)
        try run.saveCheckpoint(to: "\(directory)/plain.safetensors")
        let grower = Grower(config: config, backend: CPUBackend(), data: data)
        XCTAssertThrowsError(try grower.run(resume: "\(directory)/plain.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("plain.safetensors"), "\(error)")
            XCTAssertTrue("\(error)".contains("grow"), "\(error)")
        }
    }
}
