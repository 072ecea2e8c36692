import XCTest
import GPUTensor
#if canImport(Glibc)
import Glibc
#endif
@testable import Trainer

/// `strata grow` as a library call (`GrowWorkflow`): the files of a grow run with its baseline,
/// and a run interrupted (during a look-ahead, then during the baseline) and resumed ending
/// where the uninterrupted one does.
final class GrowWorkflowTests: XCTestCase {
    var data = ""

    override func setUpWithError() throws {
        data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 80, test: 20)
    }

    override func tearDown() { Interruption.reset() }

    func growConfig() -> GrowConfig {
        let train = smallConfig(data: data, filters: [4, 6, 8], epochs: 6, dropout: 0)
        return GrowConfig(train: train, startStages: 1, window: 2, gamma: 0.5, initialization: .lookahead,
                          lookaheadEpochs: 1, maxEpochs: 6, maxEpochsPerStage: 2, baseline: true)
    }

    func grow(_ config: GrowConfig, in dir: RunDirectory, mode: RunRecorder.Mode,
              display: GrowDisplay = GrowDisplay()) throws -> GrowResult {
        let recorder = try RunRecorder(dir, kind: .grow, mode: mode)
        defer { recorder.close() }
        let stored = mode == .resume ? try ConfigFile.readGrowConfig(dir.configPath) : config
        return try GrowWorkflow.run(stored, data: RunData.load(stored.train.data, seed: stored.train.seed),
                                    backend: CPUBackend(), recorder: recorder, display: display)
    }

    func lines<T: Decodable>(_ type: T.Type, _ path: String) throws -> [T] {
        let text = String(decoding: try FileSystem.readFile(path), as: UTF8.self)
        return try text.split(separator: "\n").map { try RunDirectory.decoder.decode(T.self, from: Data($0.utf8)) }
    }

    /// Every number of a grow epoch but its time.
    func numbers(_ h: [GrowEpoch]) -> [String] {
        h.map { "\($0.epoch) \($0.stages) \($0.phase) \($0.parameters) \($0.metrics.trainLoss) \($0.metrics.trainAccuracy) "
            + "\($0.metrics.validationLoss ?? -1) \($0.metrics.validationAccuracy ?? -1) "
            + "\($0.metrics.cumulativeTrainingFlops) \($0.metrics.learningRate)" }
    }

    func testAGrowRunWritesItsConfigMetricsCheckpointsBaselineAndReport() throws {
        let config = growConfig()
        let dir = RunDirectory(path: try makeTemporaryDirectory(self) + "/grow")
        var events: [String] = [], epochs: [GrowEpoch] = [], baselineEpochs = 0
        var display = GrowDisplay()
        display.line = { events.append($0) }
        display.epoch = { epochs.append($0) }
        display.baselineEpoch = { _ in baselineEpochs += 1 }
        let result = try grow(config, in: dir, mode: .new, display: display)

        // Growth events: two insertions (maxEpochsPerStage 2), each followed by one look-ahead epoch.
        XCTAssertEqual(result.summary.stages.map(\.stages), [1, 2, 3])
        XCTAssertEqual(result.summary.stages.map(\.firstEpoch), [1, 3, 6])
        XCTAssertEqual(events.filter { $0.contains("inserting sub-network") }.count, 2, "\(events)")
        XCTAssertEqual(result.history.map(\.phase), ["train", "train", "lookahead", "train", "train", "lookahead"])
        XCTAssertEqual(result.model.stages.count, 3)
        XCTAssertEqual(numbers(epochs), numbers(result.history))
        XCTAssertEqual(baselineEpochs, 6)

        // Files: config, one metrics line per epoch, the manifest complete, summary and figure.
        XCTAssertEqual(try ConfigFile.readGrowConfig(dir.configPath), config)
        XCTAssertEqual(numbers(try lines(GrowEpoch.self, dir.metricsPath)), numbers(result.history))
        let manifest = try dir.readJSON(RunManifest.self, from: dir.manifestPath)
        XCTAssertEqual(manifest.status, .complete)
        XCTAssertEqual(manifest.kind, .grow)
        XCTAssertEqual(manifest.last?.epoch, 6)
        XCTAssertTrue(FileSystem.kind(of: dir.path + "/" + (manifest.last?.file ?? "-")) == .file)
        let report = try dir.readJSON(GrowthReport.self, from: dir.summaryPath)
        XCTAssertEqual(report.grow, result.summary)
        XCTAssertEqual(report.config, config)
        XCTAssertEqual(report.baseline?.epochs, 6)
        XCTAssertNotNil(report.baseline?.testAccuracy)
        XCTAssertTrue(String(decoding: try FileSystem.readFile(dir.figurePath), as: UTF8.self).contains("<svg"))
        // The baseline is an ordinary, complete train run in baseline/.
        let base = RunDirectory(path: dir.path + "/baseline")
        XCTAssertEqual(try base.readJSON(RunManifest.self, from: base.manifestPath).status, .complete)
        XCTAssertEqual(try base.readMetrics().count, 6)
        XCTAssertEqual(try base.readJSON(RunSummary.self, from: base.summaryPath), report.baseline)

        // Done: resumed again, it reports the same run and trains nothing.
        var notes: [String] = []
        var again = GrowDisplay()
        again.line = { notes.append($0) }
        again.epoch = { _ in XCTFail("a complete grow run trained again") }
        let rerun = try grow(config, in: dir, mode: .resume, display: again)
        XCTAssertEqual(rerun.summary.stages, result.summary.stages)
        XCTAssertTrue(notes.contains { $0.contains("the grow run is complete (6 epochs)") }, "\(notes)")
    }

    func testAGrowRunInterruptedInALookAheadAndInItsBaselineResumesToTheSameEnd() throws {
        let config = growConfig()
        let straightDir = RunDirectory(path: try makeTemporaryDirectory(self) + "/straight")
        let straight = try grow(config, in: straightDir, mode: .new)

        let dir = RunDirectory(path: try makeTemporaryDirectory(self) + "/killed")
        // SIGTERM in the first look-ahead (epoch 3, after the insertion), then in the baseline's epoch 2.
        var inBaseline = false, stops = 0
        var display = GrowDisplay()
        display.heading = { _ in inBaseline = true }
        display.observer.batch = { epoch, done, _, _ in
            if done == 2 && (stops, epoch) == (inBaseline ? (1, 2) : (0, 3)) {
                stops += 1
                Interruption.request(SIGTERM)
            }
        }
        XCTAssertThrowsError(try grow(config, in: dir, mode: .new, display: display)) { error in
            XCTAssertEqual((error as? InterruptedError)?.signal, SIGTERM, "\(error)")
        }
        var manifest = try dir.readJSON(RunManifest.self, from: dir.manifestPath)
        XCTAssertEqual(manifest.status, .interrupted)
        XCTAssertEqual(manifest.last?.epoch, 2, "the look-ahead epoch has no checkpoint")
        XCTAssertEqual(try lines(GrowEpoch.self, dir.metricsPath).count, 2)
        Interruption.reset()

        XCTAssertThrowsError(try grow(config, in: dir, mode: .resume, display: display)) { error in
            XCTAssertEqual((error as? InterruptedError)?.signal, SIGTERM, "\(error)")
        }
        XCTAssertTrue(inBaseline)
        manifest = try dir.readJSON(RunManifest.self, from: dir.manifestPath)
        XCTAssertEqual(manifest.status, .interrupted, "the grow run is what --resume continues")
        Interruption.reset()

        let resumed = try grow(config, in: dir, mode: .resume)
        XCTAssertEqual(try dir.readJSON(RunManifest.self, from: dir.manifestPath).status, .complete)
        XCTAssertEqual(numbers(try lines(GrowEpoch.self, dir.metricsPath)), numbers(straight.history))
        XCTAssertEqual(resumed.summary.stages, straight.summary.stages)
        XCTAssertEqual(resumed.summary.cumulativeTrainingFlops, straight.summary.cumulativeTrainingFlops)
        XCTAssertEqual(resumed.summary.testAccuracy, straight.summary.testAccuracy)
        XCTAssertEqual(resumed.baseline?.testAccuracy, straight.baseline?.testAccuracy)
        XCTAssertEqual(resumed.baseline?.cumulativeTrainingFlops, straight.baseline?.cumulativeTrainingFlops)
        let base = RunDirectory(path: dir.path + "/baseline"), straightBase = RunDirectory(path: straightDir.path + "/baseline")
        XCTAssertEqual(try base.readMetrics().map(\.trainLoss), try straightBase.readMetrics().map(\.trainLoss))
        let a = try resumed.model.stateDict.map { ($0.name, try resumed.model.backend!.download($0.tensor)) }
        let b = try straight.model.stateDict.map { ($0.name, try straight.model.backend!.download($0.tensor)) }
        XCTAssertEqual(a.map(\.0), b.map(\.0))
        for (x, y) in zip(a, b) { XCTAssertEqual(x.1, y.1, "\(x.0) differs after the interrupted resume") }
    }
}
