import GPUTensor
@testable import Trainer
import XCTest
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Several workers without threads: holds up to `slots` jobs and finishes the most recently
/// submitted first (`TrialRunner.run`, the worker side of every executor), so results arrive
/// out of trial order, as they do from parallel workers.
final class OutOfOrderExecutor: TrialExecutor {
    let slots: Int
    private var held: [TrialJob] = []
    private(set) var submitted: [TrialJob] = []
    private(set) var mostAtOnce = 0
    /// Simulates the search process being killed once this many results have been collected.
    var killAfter: Int?
    struct Killed: Error {}

    init(slots: Int) { self.slots = slots }
    var freeSlots: Int { slots - held.count }

    func submit(_ job: TrialJob) throws {
        held.append(job)
        submitted.append(job)
        mostAtOnce = max(mostAtOnce, held.count)
    }

    func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        if let k = killAfter {
            if k == 0 {
                // The killed search's workers ran on: the held jobs finish (outcome.json) unjournaled.
                for job in held { _ = TrialRunner.run(job) }
                throw Killed()
            }
            killAfter = k - 1
        }
        guard let job = held.popLast() else { return [] }
        return [(TrialRunner.run(job), 0.01)]
    }

    func cancelAll() { held.removeAll() }
}

/// One slot; trials run as they come, but the final training's job trains only `finalEpochs`
/// epochs and then dies: `.search`, the search process killed (`poll` throws; the worker's
/// epochs are committed, it wrote no outcome), or `.worker`, the worker killed alone (a failed
/// outcome, left in `outcome.json` too, as a worker that caught an error leaves it), or
/// `.searchAfterTheWorker`, the search killed after the worker finished every epoch.
final class FinalKillingExecutor: TrialExecutor {
    enum How { case search, worker, searchAfterTheWorker }
    let how: How
    let finalEpochs: Int
    private var held: [TrialJob] = []
    struct Killed: Error {}

    init(how: How, finalEpochs: Int) {
        self.how = how
        self.finalEpochs = finalEpochs
    }

    var freeSlots: Int { held.isEmpty ? 1 : 0 }
    func submit(_ job: TrialJob) throws { held.append(job) }

    func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        guard let job = held.popLast() else { return [] }
        guard job.id == "final" else { return [(TrialRunner.run(job), 0.01)] }
        var cut = job
        cut.untilEpoch = finalEpochs
        _ = TrialRunner.run(cut)
        let outcomePath = TrialRunner.outcomePath(job.directory)
        switch how {
        case .search:
            try FileManager.default.removeItem(atPath: outcomePath)
            throw Killed()
        case .searchAfterTheWorker:
            _ = TrialRunner.run(job)
            throw Killed()
        case .worker:
            let failed = TrialOutcome.failed(job.id, "worker killed by signal 9")
            try SearchJSON.write(failed, to: outcomePath)
            return [(failed, 0.01)]
        }
    }

    func cancelAll() { held.removeAll() }
}

final class HPOEngineTests: XCTestCase {
    func makeConfig(data: String, trials: Int, sampler: HPOConfig.SamplerKind = .random,
                    pruner: HPOConfig.PrunerKind = .asha, epochs: Int = 3) throws -> HPOConfig {
        var base = smallConfig(data: data, filters: [4, 6], epochs: epochs, augment: false, optimizer: .adam(learningRate: 1e-3))
        base.batchSize = 8
        let space = try HPOSpace([("lr", .float(low: 1e-4, high: 1e-1, log: true)), ("batch_size", .categorical(["8", "16"]))])
        return HPOConfig(trial: base, final: base, space: space, sampler: sampler, pruner: pruner, objective: .loss,
                         trials: trials, finalEpochs: 0, proxy: nil)
    }

    func makeData() throws -> String {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 96, test: 20)
        return data
    }

    func search(_ config: HPOConfig, in path: String, executor: TrialExecutor) throws -> (HPORun, HPOSummary) {
        let run = try HPORun(config: config, directory: RunDirectory(path: path), backend: CPUBackend(),
                             data: try RunData.load(config.trial.data, seed: config.trial.seed))
        run.executor = executor
        return (run, try run.run())
    }

    func journal(_ run: HPORun) throws -> [StudyEvent] { try HPORun.readJournal(run.journalPath) }

    /// Two workers whose results come back out of order propose the same trials as one worker
    /// (the random sampler is a function of seed and trial number), and without a pruner every
    /// trial's values are bit-identical: where a trial runs does not change it.
    func testTwoWorkersRunTheSameTrialsAsOne() throws {
        let data = try makeData(), root = try makeTemporaryDirectory(self)
        let config = try makeConfig(data: data, trials: 5, pruner: .none)
        let (one, _) = try search(config, in: root + "/one", executor: InProcessExecutor())
        let parallel = OutOfOrderExecutor(slots: 2)
        let (two, _) = try search(config, in: root + "/two", executor: parallel)
        XCTAssertEqual(parallel.mostAtOnce, 2, "two trials were running at once")
        XCTAssertEqual(two.records.map(\.trialNumber), [0, 1, 2, 3, 4])
        XCTAssertEqual(two.records.map(\.params), one.records.map(\.params))
        XCTAssertEqual(two.records.map(\.objectives), one.records.map(\.objectives))
        XCTAssertEqual(two.records.map(\.status), Array(repeating: .finished, count: 5))
        // Results arrived out of trial order (the journal's order is arrival's).
        let ended = try journal(two).filter { $0.status != .running }.map(\.trialNumber)
        XCTAssertNotEqual(ended, ended.sorted())

        // With ASHA the same trials are proposed; each stops at a rung or runs its budget.
        let asha = try makeConfig(data: data, trials: 6)
        let (a1, _) = try search(asha, in: root + "/asha1", executor: InProcessExecutor())
        let (a2, _) = try search(asha, in: root + "/asha2", executor: OutOfOrderExecutor(slots: 3))
        XCTAssertEqual(Set(a2.records.map { HPOReport.params($0.params ?? [:]) }), Set(a1.records.map { HPOReport.params($0.params ?? [:]) }))
        XCTAssertEqual(a2.records.count, 6)
        for r in a1.records + a2.records {
            XCTAssertTrue(r.status == .finished ? r.objectives.count == 3 : r.status == .pruned && r.objectives.count == 1, "\(r)")
        }
    }

    /// ASHA stops a trial at its first rung: its job trained one epoch and no more (its run
    /// directory holds one epoch), and its last journal line says pruned. A promoted trial is
    /// continued from its checkpoint by a second job, and ends with exactly the values of a trial
    /// trained in one go (no pruner): segments are bit-identical to one run.
    func testAPrunedTrialStopsAtItsRungAndPromotedOnesContinueBitIdentically() throws {
        let data = try makeData(), root = try makeTemporaryDirectory(self)
        let executor = InProcessExecutor()
        let (asha, summary) = try search(try makeConfig(data: data, trials: 6), in: root + "/asha", executor: executor)
        let (whole, _) = try search(try makeConfig(data: data, trials: 6, pruner: .none), in: root + "/none",
                                    executor: InProcessExecutor())
        XCTAssertGreaterThan(summary.pruned, 0)
        XCTAssertGreaterThan(summary.complete, 0)
        let lines = try journal(asha)
        for r in asha.records {
            let dir = RunDirectory(path: asha.trialDirectory(r.trialNumber) + "/run")
            let trained = try dir.readMetrics().count
            let jobs = executor.submitted.filter { $0.id == HPORun.trialID(r.trialNumber) }
            switch r.status {
            case .pruned:
                XCTAssertEqual(r.objectives.count, 1)
                XCTAssertEqual(r.rungs, [1])
                XCTAssertEqual(trained, 1, "trial \(r.trialNumber) trained past its rung")
                XCTAssertEqual(jobs.map(\.untilEpoch), [1])
                XCTAssertEqual(lines.last { $0.trialNumber == r.trialNumber }?.status, .pruned)
                XCTAssertFalse(dir.exists(dir.summaryPath), "a pruned run is not complete")
            case .finished:
                XCTAssertEqual(r.rungs, [1, 3])
                XCTAssertEqual(jobs.map(\.untilEpoch), [1, 3], "rung 1, then the budget")
                XCTAssertEqual(trained, 3)
                XCTAssertEqual(r.objectives, whole.records[r.trialNumber].objectives, "trial \(r.trialNumber): resumed segments = one run")
                XCTAssertEqual(lines.filter { $0.trialNumber == r.trialNumber }.map(\.event), [.proposed, .started, .rung, .finished])
            default:
                XCTFail("trial \(r.trialNumber) \(r.status)")
            }
        }
        // Hyperband: each trial's segments end at its own bracket's rungs.
        let hb = try makeConfig(data: data, trials: 4, pruner: .hyperband, epochs: 3)
        let pruner = try XCTUnwrap(hb.makePruner() as? HyperbandPruner)
        let hbExecutor = InProcessExecutor()
        let (hbRun, _) = try search(hb, in: root + "/hb", executor: hbExecutor)
        for r in hbRun.records {
            let first = hbExecutor.submitted.first { $0.id == HPORun.trialID(r.trialNumber) }?.untilEpoch
            XCTAssertEqual(first, min(3, pruner.decisionStep(trial: r.trialNumber, after: 0)))
        }
    }

    /// A search killed with trials running (a promoted one mid-way, results written by workers
    /// but not journaled) and a torn journal line, resumed with two workers: it ends with the
    /// same trials, values and states as a search never interrupted, and no trial trained twice.
    func testResumeAfterACutCompletesTheSameTrials() throws {
        let data = try makeData(), root = try makeTemporaryDirectory(self)
        let config = try makeConfig(data: data, trials: 6)
        let (whole, _) = try search(config, in: root + "/whole", executor: InProcessExecutor())

        let cut = OutOfOrderExecutor(slots: 1)
        cut.killAfter = 4
        XCTAssertThrowsError(try search(config, in: root + "/cut", executor: cut))
        let dir = RunDirectory(path: root + "/cut")
        let before = try HPORun.readJournal(dir.path + "/journal.jsonl")
        XCTAssertTrue(before.contains { $0.status == .running && !$0.objectives.isEmpty }, "a promoted trial was cut mid-way")
        let torn = Array(#"{"params":{"batch_size":{"choice":"8"}},"sec"#.utf8)
        let fh = try XCTUnwrap(FileHandle(forWritingAtPath: dir.path + "/journal.jsonl"))
        fh.seekToEndOfFile()
        fh.write(Data(torn))
        fh.closeFile()

        let resumed = try HPORun(resuming: dir, backend: CPUBackend())
        XCTAssertEqual(resumed.records.count, Set(before.map(\.trialNumber)).count, "the torn line is dropped")
        resumed.executor = InProcessExecutor()
        try resumed.run()
        XCTAssertEqual(resumed.records.map(\.params), whole.records.map(\.params))
        XCTAssertEqual(resumed.records.map(\.objectives), whole.records.map(\.objectives))
        XCTAssertEqual(resumed.records.map(\.status), whole.records.map(\.status))
        XCTAssertEqual(resumed.records.map(\.rungs), whole.records.map(\.rungs))
        // The journal is whole again: every line parses, the torn bytes are gone.
        let after = try HPORun.readJournal(dir.path + "/journal.jsonl")
        XCTAssertEqual(try XCTUnwrap(FileManager.default.contents(atPath: dir.path + "/journal.jsonl")).last, 0x0A)
        XCTAssertEqual(after.prefix(before.count).map(\.trialNumber), before.map(\.trialNumber))
        for r in resumed.records {
            XCTAssertEqual(try RunDirectory(path: resumed.trialDirectory(r.trialNumber) + "/run").readMetrics().map(\.epoch),
                           Array(1...r.objectives.count), "trial \(r.trialNumber) trained each epoch once")
        }
    }

    /// An hpo directory of the journal format before `StudyEvent` (`StudyEvent` lines, and
    /// `"event": "final"` lines) cut short, then resumed: the old lines stay, events follow,
    /// and the trials end as in a search never interrupted.
    func testOldFormatHPOJournalResumes() throws {
        let data = try makeData(), root = try makeTemporaryDirectory(self)
        var config = try makeConfig(data: data, trials: 6)
        config.finalEpochs = 1
        // In a scope: the run holds its directory's lock until it goes.
        let (wholeRecords, wholeSummary, wholePath): ([StudyEvent], HPOSummary, String) = try {
            let (w, s) = try search(config, in: root + "/whole", executor: InProcessExecutor())
            return (w.records, s, w.directory.path)
        }()
        let cut = OutOfOrderExecutor(slots: 1)
        cut.killAfter = 4
        XCTAssertThrowsError(try search(config, in: root + "/cut", executor: cut))
        let dir = RunDirectory(path: root + "/cut")
        // That format had no `started` lines.
        let before = try HPORun.readJournal(dir.path + "/journal.jsonl").filter { $0.event != .started }
        let oldText = try before.map { try legacyLine($0) + "\n" }.joined()
        XCTAssertFalse(oldText.contains("format"))
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.path + "/journal.jsonl", contents: Data(oldText.utf8)))
        XCTAssertEqual(try HPORun.readJournal(dir.path + "/journal.jsonl").map(\.status), before.map(\.status))

        let resumed = try HPORun(resuming: dir, backend: CPUBackend())
        resumed.executor = InProcessExecutor()
        let summary = try resumed.run()
        XCTAssertEqual(resumed.records.map(\.params), wholeRecords.map(\.params))
        XCTAssertEqual(resumed.records.map(\.objectives), wholeRecords.map(\.objectives))
        XCTAssertEqual(resumed.records.map(\.status), wholeRecords.map(\.status))
        XCTAssertEqual(summary.bestTrial, wholeSummary.bestTrial)
        let text = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: dir.path + "/journal.jsonl")), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix(oldText), "the old lines are kept")
        let after = text.dropFirst(oldText.count).split(separator: "\n")
        XCTAssertTrue(after.allSatisfy { $0.contains(#""format":1"#) }, "new lines are events")
        XCTAssertTrue(after.contains { $0.contains(#""event":"final_started""#) })
        XCTAssertTrue(after.contains { $0.contains(#""event":"final_finished""#) })

        // A finished old directory, final lines included ("event": "final"): a resume finds all done.
        let lines = try HPORun.readJournalLines(wholePath + "/journal.jsonl").filter { $0.event != .started }
        let wholeOld = try lines.map { try legacyLine($0) + "\n" }.joined()
        XCTAssertTrue(wholeOld.contains(#""event":"final""#))
        XCTAssertTrue(FileManager.default.createFile(atPath: wholePath + "/journal.jsonl", contents: Data(wholeOld.utf8)))
        let again = try HPORun(resuming: RunDirectory(path: wholePath), backend: CPUBackend())
        XCTAssertEqual(again.finalEvents.map(\.event), [.finalStarted, .finalFinished])
        again.executor = InProcessExecutor()
        XCTAssertEqual(try again.run().finalTestAccuracy, wholeSummary.finalTestAccuracy)
        XCTAssertEqual(String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: wholePath + "/journal.jsonl")), as: UTF8.self), wholeOld,
                       "nothing ran again")
    }

    /// The final training is a job of the search's executor (in `final/`, its run directory
    /// `final/run`), journaled when it starts and ends (seconds, CPU seconds, test accuracy). A
    /// finished one is not run again; one killed after its first epoch (the search process, or
    /// only its worker) continues on resume from that checkpoint: each epoch trained once, no
    /// trial rerun, and the same test accuracy, to the bit, as a final never interrupted.
    func testTheFinalIsAJobAndAKilledFinalResumesFromItsLastCheckpoint() throws {
        let data = try makeData(), root = try makeTemporaryDirectory(self)
        var config = try makeConfig(data: data, trials: 3, pruner: .none, epochs: 1)
        config.finalEpochs = 3
        // In a scope: the run holds its directory's lock until it goes.
        let (summary, wholeMetrics, trialLines, values) = try { () throws -> (HPOSummary, [EpochMetrics], [StudyEvent], [[Double]]) in
            let executor = InProcessExecutor()
            let (whole, summary) = try search(config, in: root + "/whole", executor: executor)
            XCTAssertEqual(executor.submitted.map(\.id), ["trial-0000", "trial-0001", "trial-0002", "final"])
            let job = try XCTUnwrap(executor.submitted.last)
            XCTAssertEqual(job.train?.epochs, 3)
            XCTAssertEqual(job.keepTestSet, true)
            XCTAssertNil(job.untilEpoch)
            XCTAssertEqual(job.directory, whole.finalJobDirectory)
            XCTAssertEqual(whole.finalDirectory.path, whole.finalJobDirectory + "/run")
            XCTAssertTrue(FileManager.default.fileExists(atPath: whole.finalJobDirectory + "/job.json"))
            let wholeMetrics = try whole.finalDirectory.readMetrics()
            XCTAssertEqual(wholeMetrics.map(\.epoch), [1, 2, 3])
            let events = try HPORun.readFinalEvents(whole.journalPath)
            XCTAssertEqual(events.map(\.event), [.finalStarted, .finalFinished])
            XCTAssertEqual(events[0].fromEpoch, 0)
            XCTAssertEqual(events[1].trialNumber, summary.bestTrial)
            XCTAssertEqual(events[1].params, summary.bestParams)
            XCTAssertEqual(events[1].epochs, 3)
            XCTAssertEqual(events[1].seconds, summary.finalSeconds)
            XCTAssertEqual(events[1].testAccuracy, summary.finalTestAccuracy)
            XCTAssertEqual(events[1].testLoss, summary.finalTestLoss)
            XCTAssertNotNil(summary.finalTestAccuracy)
            XCTAssertGreaterThan(events[1].cpuSeconds ?? 0, 0)
            XCTAssertGreaterThan(events[1].wallSeconds ?? 0, 0)
            let trialLines = try journal(whole)
            XCTAssertEqual(trialLines.map(\.event), Array(repeating: [.proposed, .started, .finished], count: 3).flatMap { $0 },
                           "each trial: proposed, started, finished; the final's lines are apart")
            return (summary, wholeMetrics, trialLines, whole.records.map(\.objectives))
        }()
        // A resume of a finished search trains nothing and reports the same.
        let again = try HPORun(resuming: RunDirectory(path: root + "/whole"), backend: CPUBackend())
        let idle = InProcessExecutor()
        again.executor = idle
        XCTAssertEqual(try again.run(), summary)
        XCTAssertTrue(idle.submitted.isEmpty)

        // The search killed after the final's worker ended: its outcome is journaled, nothing runs again.
        do {
            let path = root + "/cut-after"
            XCTAssertThrowsError(try search(config, in: path, executor: FinalKillingExecutor(how: .searchAfterTheWorker, finalEpochs: 1)))
            let resumed = try HPORun(resuming: RunDirectory(path: path), backend: CPUBackend())
            let rerun = InProcessExecutor()
            resumed.executor = rerun
            let s = try resumed.run()
            XCTAssertTrue(rerun.submitted.isEmpty)
            XCTAssertEqual(s.finalTestAccuracy, summary.finalTestAccuracy)
            let events = try HPORun.readFinalEvents(path + "/journal.jsonl")
            XCTAssertEqual(events.map(\.event), [.finalStarted, .finalFinished])
            XCTAssertGreaterThan(events.last?.cpuSeconds ?? 0, 0)
        }

        for how in [FinalKillingExecutor.How.search, .worker] {
            let path = root + "/cut-\(how)"
            XCTAssertThrowsError(try search(config, in: path, executor: FinalKillingExecutor(how: how, finalEpochs: 1))) {
                if how == .worker { XCTAssertTrue("\($0)".contains("--resume") && "\($0)".contains("signal 9"), "\($0)") }
            }
            XCTAssertEqual(try HPORun.readFinalEvents(path + "/journal.jsonl").map(\.event), how == .search ? [.finalStarted] : [.finalStarted, .finalFailed])
            let resumed = try HPORun(resuming: RunDirectory(path: path), backend: CPUBackend())
            XCTAssertEqual(try resumed.finalDirectory.readMetrics().map(\.epoch), [1], "\(how): killed after epoch 1")
            let rerun = InProcessExecutor()
            resumed.executor = rerun
            let s = try resumed.run()
            XCTAssertEqual(rerun.submitted.map(\.id), ["final"], "\(how): no trial ran again")
            let metrics = try resumed.finalDirectory.readMetrics()
            XCTAssertEqual(metrics.map(\.epoch), [1, 2, 3], "\(how): each epoch trained once")
            XCTAssertEqual(metrics.map(\.trainLoss), wholeMetrics.map(\.trainLoss), "\(how)")
            XCTAssertEqual(s.finalTestAccuracy, summary.finalTestAccuracy, "\(how): the resumed final is the uninterrupted one")
            XCTAssertEqual(s.finalTestLoss, summary.finalTestLoss, "\(how)")
            let events = try HPORun.readFinalEvents(path + "/journal.jsonl")
            XCTAssertEqual(events.map(\.event), how == .search ? [.finalStarted, .finalStarted, .finalFinished] : [.finalStarted, .finalFailed, .finalStarted, .finalFinished])
            XCTAssertEqual(events.filter { $0.event == .finalStarted }.map(\.fromEpoch), [0, 1], "\(how)")
            XCTAssertEqual(try HPORun.readJournal(path + "/journal.jsonl").count, trialLines.count, "\(how)")
            XCTAssertEqual(resumed.records.map(\.objectives), values, "\(how)")
        }
    }

    /// `--compare-full`'s report: both searches side by side with time, trials, best score and
    /// final test accuracy, and every trial with its hyperparameters, rung values and state.
    func testReportPutsProxyAndFullSideBySide() throws {
        let data = try makeData(), root = try makeTemporaryDirectory(self)
        var full = try makeConfig(data: data, trials: 4)
        full.finalEpochs = 1
        full.objective = .accuracy
        var proxy = full
        proxy.trial.model = try Pruning.prune(full.trial.model, seed: 11, percentile: 85, minRatio: 0.15, backend: CPUBackend()).spec
        proxy.trial.modelName = "cnn-proxy"
        proxy.proxy = "synflow"
        let scales = try LearningRateTransfer.scaled.scales(full: full.trial.model, proxy: proxy.trial.model,
                                                            optimizer: full.trial.optimizer.kind)
        XCTAssertFalse(scales.isEmpty, "the 4,6 cnn's pruned conv narrows the next layer's fan-in")
        proxy.trial.optimizer.learningRateScales = scales
        let p = try search(proxy, in: root + "/proxy", executor: InProcessExecutor())
        // The trials' jobs trained with the multipliers (they travel in the trial's config).
        XCTAssertEqual(try RunDirectory(path: root).readJSON(HPOConfig.self, from: root + "/proxy/hpo.json").trial.optimizer.learningRateScales,
                       proxy.trial.optimizer.learningRateScales)
        let f = try search(full, in: root + "/full", executor: InProcessExecutor())
        let comparison = try HPOReport.writeComparison(proxy: p, full: f, to: root)
        XCTAssertEqual(comparison.searchTimeSaved, 1 - p.1.searchSeconds / f.1.searchSeconds, accuracy: 1e-12)
        XCTAssertNotNil(comparison.finalAccuracyDifference)
        let cpu = try XCTUnwrap(comparison.cpuTimeSaved)
        XCTAssertEqual(cpu, 1 - p.1.searchCPUSeconds! / f.1.searchCPUSeconds!, accuracy: 1e-12)
        XCTAssertTrue((p.0.records + f.0.records).allSatisfy { ($0.cpuSeconds ?? 0) > 0 }, "every trial's CPU seconds")
        let html = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: root + "/report.html")), as: UTF8.self)
        for needle in ["Proxy against full model", "cnn-proxy", "Search time saved by the proxy", "(CPU time: " + SearchReport.fixed(cpu * 100, 1) + "%)",
                       SearchReport.fixed(comparison.searchTimeSaved * 100, 1) + "%",
                       SearchReport.fixed(try XCTUnwrap(p.1.finalTestAccuracy) * 100, 2) + "%",
                       SearchReport.fixed(try XCTUnwrap(f.1.finalTestAccuracy) * 100, 2) + "%",
                       SearchReport.fixed(try XCTUnwrap(p.1.bestScore) * 100, 2) + "%",
                       "Trials: proxy", "Trials: full model", "<th>lr</th>", "<th>batch_size</th>", "e1: "]
            + ["the proxy's learning rates follow its widths"] {
            XCTAssertTrue(html.contains(needle), "report.html lacks \(needle)")
        }
        for r in p.0.records + f.0.records { XCTAssertTrue(html.contains(">\(r.hpoStatus)<"), "\(r.status)") }
        let json = try RunDirectory(path: root).readJSON(HPOComparison.self, from: root + "/comparison.json")
        XCTAssertEqual(json, comparison)
        // Learning rates and weight decays keep their digits.
        XCTAssertEqual(HPOReport.significant(0.00314159), "3.14e-3")
        XCTAssertEqual(HPOReport.significant(9.9996e-5), "1.00e-4")
        XCTAssertEqual(HPOReport.significant(0.25), "0.250")
        XCTAssertEqual(HPOReport.params(["lr": .float(1.05e-4), "batch_size": .choice("64")]), "batch_size=64 lr=1.05e-4")
        // Each search also has its own report.
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/proxy/report.html"))
    }

    /// `strata hpo` end to end on worker processes (`--workers 2`, the `search-trial` worker
    /// command) and, when a Python with `ray` is there (`STRATA_RAY_PYTHON`), on a local Ray
    /// head (`--engine ray`): the same trials and bit-identical values as one worker. Needs the
    /// strata binary next to the test bundle; skipped otherwise.
    func testStrataHPOOnWorkerProcessesAndRay() throws {
        let strata = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata").path
        guard FileManager.default.isExecutableFile(atPath: strata) else { throw XCTSkip("no strata binary next to the tests") }
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 96, test: 20)
        let space = data + "/space.json"
        try writeBytes(Array(#"{"lr": {"low": 1e-4, "high": 0.1, "log": true}, "batch_size": {"choices": [8, 16]}}"#.utf8), to: space)
        let common = ["hpo", "--model", "cnn", "--filters", "4,6", "--hidden", "8", "--data", data, "--validation-fraction", "0.25",
                      "--no-augment", "--space", space, "--sampler", "random", "--pruner", "none", "--trials", "4", "--epochs", "2",
                      "--final-epochs", "1", "--threads", "2", "--batch-size", "8", "--device", "cpu"]
        func records(_ dir: String) throws -> [StudyEvent] { HPORun.latest(try HPORun.readJournal(dir + "/journal.jsonl")) }
        XCTAssertEqual(try runTool(strata, common + ["--workers", "1", "--output", data + "/one"]), 0)
        XCTAssertEqual(try runTool(strata, common + ["--workers", "2", "--output", data + "/two"]), 0)
        let one = try records(data + "/one"), two = try records(data + "/two")
        XCTAssertEqual(one.count, 4)
        XCTAssertEqual(two.map(\.params), one.map(\.params))
        XCTAssertEqual(two.map(\.objectives), one.map(\.objectives))
        XCTAssertEqual(two.map(\.status), Array(repeating: .finished, count: 4))
        XCTAssertTrue(FileManager.default.fileExists(atPath: data + "/two/report.html"))
        // The final ran as a worker process's job too, journaled, in final/run.
        XCTAssertTrue(FileManager.default.fileExists(atPath: data + "/two/final/run/summary.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: data + "/two/final/stderr.log"), "a worker process trained it")
        for dir in ["one", "two"] {
            let events = try HPORun.readFinalEvents(data + "/\(dir)/journal.jsonl")
            XCTAssertEqual(events.map(\.event), [.finalStarted, .finalFinished], dir)
            XCTAssertGreaterThan(events.last?.cpuSeconds ?? 0, 0, dir)
        }
        XCTAssertEqual(try HPORun.readFinalEvents(data + "/two/journal.jsonl").last?.testAccuracy,
                       try HPORun.readFinalEvents(data + "/one/journal.jsonl").last?.testAccuracy)

        let python = ProcessInfo.processInfo.environment["STRATA_RAY_PYTHON"] ?? "python3"
        guard (try? runTool(python, ["-c", "import ray"])) == 0 else { throw XCTSkip("\(python) has no ray (set STRATA_RAY_PYTHON)") }
        // A Ray started by the driver itself (--ray-address local) with one worker of two threads:
        // each task asks for its job's threads (the final for all of --threads), so that Ray must
        // have --threads CPUs, not --workers (with one it waited forever). Before the head below.
        XCTAssertEqual(try runTool("timeout", ["300", strata] + common + ["--workers", "1", "--output", data + "/ray-local",
                                                                          "--engine", "ray", "--python", python]), 0,
                       "an hpo on a local Ray with --threads 2 --workers 1 ended (124: it waited for CPUs)")
        XCTAssertEqual(try records(data + "/ray-local").map(\.objectives), one.map(\.objectives))
        XCTAssertEqual(try HPORun.readFinalEvents(data + "/ray-local/journal.jsonl").map(\.event), [.finalStarted, .finalFinished])
        let ray = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("ray").path
        let rayCLI = FileManager.default.isExecutableFile(atPath: ray) ? ray : "ray"
        let port = 20000 + Int(getpid() % 20000)
        XCTAssertEqual(try runTool(rayCLI, ["start", "--head", "--node-ip-address", "127.0.0.1", "--port", "\(port)", "--num-cpus", "2",
                                            "--include-dashboard", "false", "--disable-usage-stats"]), 0)
        defer { _ = try? runTool(rayCLI, ["stop"]) }
        // ASHA on Ray: promoted trials continue from the run directory that travelled with their job.
        var asha = common
        asha[asha.firstIndex(of: "--pruner")! + 1] = "asha"
        asha[asha.firstIndex(of: "--epochs")! + 1] = "3"   // rung 1, then the budget
        XCTAssertEqual(try runTool(strata, asha + ["--workers", "1", "--output", data + "/asha-local"]), 0)
        // Bounded: a head stopped from outside (another `ray stop` on the machine) leaves the driver retrying forever.
        XCTAssertEqual(try runTool("timeout", ["300", strata] + asha + ["--workers", "1", "--output", data + "/asha-ray", "--engine", "ray",
                                                                        "--ray-address", "127.0.0.1:\(port)", "--python", python]), 0)
        let local = try records(data + "/asha-local"), onRay = try records(data + "/asha-ray")
        XCTAssertEqual(onRay.map(\.params), local.map(\.params))
        XCTAssertEqual(onRay.map(\.objectives), local.map(\.objectives))
        XCTAssertEqual(onRay.map(\.status), local.map(\.status))
        XCTAssertTrue(onRay.contains { $0.status == .finished && $0.rungs == [1, 3] }, "a promoted trial continued on Ray")
        // The final ran on Ray: its files came back into final/, the same test accuracy as locally.
        let rayFinal = try HPORun.readFinalEvents(data + "/asha-ray/journal.jsonl")
        XCTAssertEqual(rayFinal.map(\.event), [.finalStarted, .finalFinished])
        XCTAssertEqual(rayFinal.last?.testAccuracy, try HPORun.readFinalEvents(data + "/asha-local/journal.jsonl").last?.testAccuracy)
        XCTAssertTrue(FileManager.default.fileExists(atPath: data + "/asha-ray/final/run/summary.json"))
        let raySummary = try RunDirectory(path: data).readJSON(HPOSummary.self, from: data + "/asha-ray/summary.json")
        XCTAssertEqual(raySummary.finalTestAccuracy, rayFinal.last?.testAccuracy)
    }
}
