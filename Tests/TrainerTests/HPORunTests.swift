import GPUTensor
@testable import Trainer
import XCTest
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

final class HPORunTests: XCTestCase {
    func makeConfig(data: String, trials: Int = 5, proxy: Bool = false) throws -> HPOConfig {
        var base = smallConfig(data: data, filters: [8, 12], epochs: 3, augment: false, optimizer: .adam(learningRate: 1e-3))
        base.batchSize = 8
        var trial = base
        if proxy {
            trial.model = try Pruning.prune(base.model, seed: base.seed, percentile: 85, minRatio: 0.15, backend: CPUBackend()).spec
        }
        let space = try HPOSpace([("lr", .float(low: 1e-4, high: 1e-1, log: true)), ("batch_size", .categorical(["8", "16"]))])
        return HPOConfig(trial: trial, final: base, space: space, sampler: .tpe, pruner: .asha, objective: .loss,
                         trials: trials, finalEpochs: 1, proxy: proxy ? "synflow" : nil)
    }

    func testASearchRunsPrunesAndTrainsTheWinner() throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 96, test: 20)
        let config = try makeConfig(data: data, proxy: true)
        let dir = RunDirectory(path: try makeTemporaryDirectory(self) + "/hpo")
        let run = try HPORun(config: config, directory: dir, backend: CPUBackend(), data: try RunData.load(config.trial.data, seed: 11))
        let summary = try run.run()
        XCTAssertEqual(run.records.map(\.trialNumber), [0, 1, 2, 3, 4])
        XCTAssertEqual(summary.trials, 5)
        XCTAssertGreaterThan(summary.pruned, 0, "ASHA stops some trials at the first rung")
        XCTAssertTrue(run.records.allSatisfy { $0.status == .pruned ? $0.objectives.count < 3 : $0.objectives.count == 3 || $0.status == .failed })
        XCTAssertNotNil(summary.finalTestAccuracy, "the full model trained with the winner")
        XCTAssertLessThan(summary.trialParameters, try Model(spec: config.final.model).parameterCount, "trials trained the proxy")
        // The winner's hyperparameters are in the final run's config.
        let final = try dir.readJSON(TrainConfig.self, from: run.finalDirectory.configPath)
        let best = try XCTUnwrap(summary.bestParams)
        XCTAssertEqual(final.batchSize, Int(best["batch_size"]!.description))
        XCTAssertEqual(final.model, config.final.model)
        XCTAssertThrowsError(try HPORun(config: config, directory: dir, backend: CPUBackend(),
                                        data: try RunData.load(config.trial.data, seed: 11))) {
            XCTAssertTrue("\($0)".contains("is not empty"), "\($0)")
        }
    }

    /// Killed after two trials had ended (the journal cut right after trial 2's last line, with
    /// half of the next line written), resumed: the same trials and results as an uninterrupted
    /// search. (A cut while trials run: HPOEngineTests.testResumeAfterACutCompletesTheSameTrials.)
    func testResumeRedoesNoFinishedTrialAndMatchesAnUninterruptedSearch() throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 96, test: 20)
        let config = try makeConfig(data: data, trials: 4)
        var noFinal = config
        noFinal.finalEpochs = 0
        let root = try makeTemporaryDirectory(self)
        let whole = try HPORun(config: noFinal, directory: RunDirectory(path: root + "/a"), backend: CPUBackend(),
                               data: try RunData.load(config.trial.data, seed: 11))
        try whole.run()
        // A second directory that stopped after trial 2 ended, mid-way through writing the next line.
        let b = RunDirectory(path: root + "/b")
        try b.create()
        try b.writeJSON(noFinal, to: b.path + "/hpo.json")
        let lines = try XCTUnwrap(FileManager.default.contents(atPath: whole.journalPath)).split(separator: 0x0A)
        let records = try HPORun.readJournal(whole.journalPath)
        let end = try XCTUnwrap(records.firstIndex { $0.trialNumber == 1 && $0.status != .running })
        XCTAssertEqual(Set(records[...end].filter { $0.status != .running }.map(\.trialNumber)), [0, 1], "one worker: trials end in order")
        try FileSystem.writeAtomically(lines[...end].flatMap { Array($0) + [0x0A] } + Array(lines[end + 1].prefix(20)),
                                       to: b.path + "/journal.jsonl")
        let resumed = try HPORun(resuming: b, backend: CPUBackend())
        XCTAssertEqual(resumed.records.count, 2, "the cut line is dropped")
        try resumed.run()
        XCTAssertEqual(resumed.records.map(\.params), whole.records.map(\.params))
        XCTAssertEqual(resumed.records.map(\.values), whole.records.map(\.values))
        XCTAssertEqual(resumed.records.map(\.status), whole.records.map(\.status))
    }

    func testSpaceFiles() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = dir + "/s.json"
        try writeBytes(Array(#"{"lr": {"low": 1e-4, "high": 0.1, "log": true}, "batch_size": {"choices": [32, 64]}, "momentum": {"low": 0.8, "high": 0.99}}"#.utf8), to: good)
        let space = try HPOParameter.readSpace(good)
        XCTAssertEqual(space.names, ["batch_size", "lr", "momentum"])
        XCTAssertEqual(space.dimensions[0], .categorical(["32", "64"]))
        let applied = try HPOParameter.apply(["lr": .float(0.01), "batch_size": .choice("64"), "momentum": .float(0.85)],
                                             to: smallConfig(data: "x"))
        XCTAssertEqual(applied.batchSize, 64)
        XCTAssertEqual(applied.optimizer.learningRate, 0.01)
        XCTAssertEqual(applied.optimizer.momentum, 0.85)
        for (text, message) in [(#"{"lr": {"low": 1, "hgh": 2}}"#, "unknown key 'hgh'"), (#"{"lrate": {"low": 1, "high": 2}}"#, "unknown hyperparameter 'lrate'"),
                                (#"{"lr": {"low": 0, "high": 1, "log": true}}"#, "log range must be positive"), (#"{}"#, "names no hyperparameter")] {
            let path = dir + "/bad.json"
            try writeBytes(Array(text.utf8), to: path)
            XCTAssertThrowsError(try HPOParameter.readSpace(path)) {
                XCTAssertTrue("\($0)".contains(message) && "\($0)".contains("bad.json"), "\($0)")
            }
        }
    }
}
