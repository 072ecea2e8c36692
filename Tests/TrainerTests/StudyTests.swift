import XCTest
@testable import Trainer

/// The study engine with a pruner in an architecture search (`strata search --pruner`): which
/// trials continue or stop at which rung, and a killed search resumed to the same journal.
final class StudyTests: XCTestCase {
    let data = DataConfig(kind: "cifar10", path: "/nonexistent", augment: false)
    /// Six 1-conv trials (one per lr), 3 epochs each: ASHA's rungs are epochs 1 and 3 (the budget).
    let space = SearchSpace(name: "asha", convLayers: [1], filters: [4], hidden: [[8]],
                            lr: [0.1, 0.05, 0.02, 0.01, 0.005, 0.002], batchSize: [8], epochs: 3)
    /// Epoch-1 validation losses of the grid's trials, in grid order.
    let firstLosses = [1.0, 0.8, 1.2, 0.5, 0.9, 0.95]

    /// A segment's outcome: epoch e of the trial at grid index i has loss firstLosses[i] - 0.01 (e - 1).
    func outcome(_ job: TrialJob) -> TrialOutcome {
        let t = job.trial!
        let i = space.gridPoints.firstIndex(of: t)!
        let until = job.untilEpoch ?? t.epochs
        let losses = (1...until).map { firstLosses[i] - 0.01 * Double($0 - 1) }
        return TrialOutcome(id: job.id, status: .finished, validationLoss: losses.last, validationAccuracy: 0.5,
                            testAccuracy: until == t.epochs ? 0.4 : nil, seconds: Double(until), flopsExecuted: 100,
                            flopsSkipped: 0, epochs: until, validationLosses: losses, validationAccuracies: losses.map { _ in 0.5 })
    }

    func search(_ dir: String, _ executor: TrialExecutor, pruner: StudyPrunerKind = .asha) -> SearchEngine {
        SearchEngine(directory: SearchDirectory(path: dir),
                     settings: SearchSettings(space: space, reuse: .none, data: data, pruner: pruner),
                     executor: executor, threadsPerTrial: 1)
    }

    /// ASHA (reduction 3), one worker, worked by hand: a trial goes on at epoch 1 only if its loss
    /// is within the best third of the epoch-1 losses so far (the first always goes on):
    /// 1.0 first: on; 0.8 best of 2: on; 1.2 vs best 0.8: pruned; 0.5 best: on; 0.9 vs 0.5:
    /// pruned; 0.95 vs the 2nd best of 6 (0.8): pruned. A promoted trial runs next, to epoch 3.
    func testASHAStopsWeakArchitectureTrialsAtTheFirstRung() throws {
        let dir = try makeTemporaryDirectory(self)
        let executor = InProcessExecutor(body: outcome)
        let records = try search(dir, executor).run()
        let ids = space.gridPoints.map(\.id)
        XCTAssertEqual(records.map(\.id), ids)
        XCTAssertEqual(records.map(\.status), [.finished, .finished, .pruned, .finished, .pruned, .pruned])
        XCTAssertEqual(records.map(\.rungs), [[1, 3], [1, 3], [1], [1, 3], [1], [1]])
        XCTAssertEqual(records.map(\.epochs), [3, 3, 1, 3, 1, 1])
        XCTAssertEqual(records[3].validationLoss ?? 0, 0.48, accuracy: 1e-12, "the lowest loss over its epochs")
        XCTAssertEqual(records[0].testAccuracy, 0.4)
        XCTAssertNil(records[2].testAccuracy, "a pruned trial never sees the test set")
        let jobs = executor.submitted.map { "\(ids.firstIndex(of: $0.id)!):\($0.untilEpoch ?? 0)" }
        XCTAssertEqual(jobs, ["0:1", "0:3", "1:1", "1:3", "2:1", "3:1", "3:3", "4:1", "5:1"],
                       "segments up to each rung; a promoted trial goes before new ones")
        XCTAssertTrue(executor.submitted.allSatisfy { $0.keepTestSet == true })
        // The journal: proposed, started, then one event per segment.
        let lines = try SearchDirectory(path: dir).journal.read()
        XCTAssertEqual(lines.filter { $0.id == ids[0] }.map(\.event), [.proposed, .started, .rung, .finished])
        XCTAssertEqual(lines.filter { $0.id == ids[2] }.map(\.event), [.proposed, .started, .pruned])
        let summary = SearchSummary(name: "asha", reuse: .none, records: records, searchSeconds: nil)
        XCTAssertEqual(summary.pruned, 3)
        XCTAssertEqual(summary.finished, 3)
        XCTAssertEqual(summary.best?.id, ids[3])
    }

    /// Without a pruner every trial trains its budget in one job, as before pruners.
    func testNoPrunerRunsEveryTrialWhole() throws {
        let dir = try makeTemporaryDirectory(self)
        let executor = InProcessExecutor(body: outcome)
        let records = try search(dir, executor, pruner: .none).run()
        XCTAssertEqual(records.map(\.status), Array(repeating: .finished, count: 6))
        XCTAssertTrue(executor.submitted.allSatisfy { $0.untilEpoch == nil })
        XCTAssertTrue(records.allSatisfy { $0.values == nil && $0.rungs == nil })
    }

    /// Killed after every possible number of job results, then resumed: the same latest records
    /// (statuses, rungs, values) as the uninterrupted search.
    func testKilledAtEveryJobThenResumedGivesTheSameJournal() throws {
        let whole = try search(try makeTemporaryDirectory(self), InProcessExecutor(body: outcome)).run()
        for limit in 0..<9 {
            let dir = try makeTemporaryDirectory(self)
            let killer = InterruptingExecutor(limit: limit, body: outcome)
            XCTAssertThrowsError(try search(dir, killer).run(), "limit \(limit)")
            let resumed = try search(dir, InProcessExecutor(body: outcome)).run()
            XCTAssertEqual(resumed.map(\.status), whole.map(\.status), "limit \(limit)")
            XCTAssertEqual(resumed.map(\.rungs), whole.map(\.rungs), "limit \(limit)")
            XCTAssertEqual(resumed.map(\.values), whole.map(\.values), "limit \(limit)")
        }
    }

    /// A search directory of the journal format before `StudyEvent` (one trial state per line,
    /// as written until then) cut short, then resumed: its lines are read and kept, the
    /// new events follow them, and the trials end as in a search never interrupted.
    func testOldFormatSearchJournalResumes() throws {
        let whole = try search(try makeTemporaryDirectory(self), InProcessExecutor(body: outcome)).run()
        let dir = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try search(dir, InterruptingExecutor(limit: 4, body: outcome)).run())
        let path = dir + "/journal.jsonl"
        // That format had no `proposed` lines.
        let old = try SearchJournal(path: path).read().filter { $0.event != .proposed }
        XCTAssertTrue(old.contains { $0.event == .rung }, "a trial was cut short at a rung")
        let oldText = try old.map { try legacyLine($0) + "\n" }.joined()
        XCTAssertFalse(oldText.contains("format"))
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(oldText.utf8)))
        XCTAssertEqual(try SearchJournal(path: path).read(), old, "the old lines read as they were written")

        let resumed = try search(dir, InProcessExecutor(body: outcome)).run()
        XCTAssertEqual(resumed.map(\.status), whole.map(\.status))
        XCTAssertEqual(resumed.map(\.rungs), whole.map(\.rungs))
        XCTAssertEqual(resumed.map(\.values), whole.map(\.values))
        let text = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: path)), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix(oldText), "the old lines are kept")
        let after = text.dropFirst(oldText.count).split(separator: "\n")
        XCTAssertFalse(after.isEmpty)
        XCTAssertTrue(after.allSatisfy { $0.contains(#""format":1"#) }, "new lines are events")
    }

    /// The one study-directory policy (StudyDirectory) as the engine opens a folder: one that
    /// holds only what the study writes itself (the Ray engine's ray.log, made before the
    /// settings) is its own; a user's file makes it no study's; a folder of another search is refused.
    func testTheEngineOpensOnlyItsOwnFolder() throws {
        let own = try makeTemporaryDirectory(self)
        XCTAssertTrue(FileManager.default.createFile(atPath: own + "/ray.log", contents: Data("ray\n".utf8)))
        XCTAssertEqual(try search(own, InProcessExecutor(body: outcome), pruner: .none).run().count, 6)
        let user = try makeTemporaryDirectory(self)
        XCTAssertTrue(FileManager.default.createFile(atPath: user + "/notes.txt", contents: Data("mine\n".utf8)))
        XCTAssertThrowsError(try search(user, InProcessExecutor(body: outcome)).run()) {
            XCTAssertTrue("\($0)".contains("is not empty and is not a strata search"), "\($0)")
        }
        XCTAssertEqual(FileManager.default.contents(atPath: user + "/notes.txt"), Data("mine\n".utf8))
        // A user's files that have the names a search writes are still theirs.
        let named = try makeTemporaryDirectory(self)
        XCTAssertTrue(FileManager.default.createFile(atPath: named + "/summary.json", contents: Data("{}".utf8)))
        XCTAssertThrowsError(try search(named, InProcessExecutor(body: outcome)).run()) {
            XCTAssertTrue("\($0)".contains("is not empty and is not a strata search"), "\($0)")
        }
        XCTAssertEqual(FileManager.default.contents(atPath: named + "/summary.json"), Data("{}".utf8))
        XCTAssertThrowsError(try search(own, InProcessExecutor(body: outcome), pruner: .asha).run()) {
            XCTAssertTrue("\($0)".contains("holds another search"), "\($0)")
        }
    }

    /// `strata search`'s workflow, reachable without the CLI: two reuse strategies side by side,
    /// each a search directory with its summary, a combined report; a resume finds every trial done.
    func testSearchWorkflowRunsSideBySideAndResumesWithNothingToDo() throws {
        let root = try makeTemporaryDirectory(self) + "/cmp"
        var lines: [String] = []
        var workflow = SearchWorkflow(execution: ExecutionRequest(workers: 1, threads: 1),
                                      makeExecutor: { _, _ in InProcessExecutor(body: self.outcome) })
        workflow.say = { lines.append($0) }
        try workflow.start(SearchSettings(space: space, reuse: .none, data: data), reuses: [.none, .paper], output: root, overwrite: false)
        for r in ["none", "paper"] {
            let (settings, records) = try SearchDirectory(path: root + "/" + r).load()
            XCTAssertEqual(settings.reuse.rawValue, r)
            XCTAssertEqual(settings.execution, StudyExecution(workers: 1, threads: 1, threadsPerTrial: 1, engine: "local"))
            XCTAssertEqual(records.count, 6)
            XCTAssertEqual(FileSystem.kind(of: root + "/" + r + "/summary.json"), .file)
        }
        XCTAssertEqual(FileSystem.kind(of: root + "/report.html"), .file)
        XCTAssertTrue(lines.contains("wrote \(root)/report.html"), "\(lines)")
        // The arms' table, the same columns as `strata hpo --compare-full`'s.
        XCTAssertTrue(lines.contains { $0.hasPrefix("arm ") && $0.contains("trials (pruned, failed)") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("paper ") && $0.contains("6 (0, 0)") && $0.contains("val_loss") }, "\(lines)")
        workflow.makeExecutor = { _, _ in InProcessExecutor(body: { job in
            XCTFail("\(job.id) ran again")
            return .failed(job.id, "ran again")
        }) }
        try workflow.resume(root)
        XCTAssertEqual(try SearchDirectory(path: root + "/paper").sessions().map(\.end), [.complete, .complete])
    }

    /// Arms side by side (`strata search --reuse a,b`, `strata hpo --compare-full`): the root's and
    /// every arm's folder are judged before anything runs, a user's folder is refused with one line,
    /// `--resume` finds the arms there, and both commands print the same table.
    func testArmsPrepareFindAndTabulate() throws {
        let root = try makeTemporaryDirectory(self) + "/arms"
        let arms = StudyArms(root: root, arms: ["none", "paper"], study: .search, comparison: .searchComparison)
        XCTAssertEqual(try arms.prepare(overwrite: false), [])
        XCTAssertEqual(StudyArms.found(in: root, candidates: ["none", "paper", "best-prefix"], study: .search), [])
        try Data("{}".utf8).write(to: URL(fileURLWithPath: root + "/paper/search.json"))
        XCTAssertEqual(StudyArms.found(in: root, candidates: ["none", "paper", "best-prefix"], study: .search), ["paper"])
        XCTAssertThrowsError(try arms.prepare(overwrite: false, existing: "already holds it")) {
            XCTAssertEqual("\($0)", "--output \(root): already holds it")
        }
        XCTAssertEqual(try arms.prepare(overwrite: true).count, 1, "--overwrite says what it removed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/paper/search.json"))
        let user = try makeTemporaryDirectory(self)
        XCTAssertTrue(FileManager.default.createFile(atPath: user + "/notes.txt", contents: Data("mine\n".utf8)))
        XCTAssertThrowsError(try StudyArms(root: user, arms: ["proxy", "full"], study: .hpo, comparison: .hpoComparison)
            .prepare(overwrite: false)) { XCTAssertTrue("\($0)".contains("is not empty and is not a strata hpo comparison"), "\($0)") }
        let table = StudyArms.table([
            .init(arm: "proxy", seconds: 12.34, cpuSeconds: nil, trials: 8, pruned: 3, failed: 0, best: "accuracy 61.20%", testAccuracy: 0.6),
            .init(arm: "full model", seconds: 40, cpuSeconds: 38.5, trials: 8, pruned: 2, failed: 1, best: "accuracy 62.00%", testAccuracy: nil)])
        XCTAssertEqual(table, ["arm         search time  CPU time  trials (pruned, failed)  best trial       test accuracy",
                               "proxy       12.3s        -         8 (3, 0)                 accuracy 61.20%  60.00%",
                               "full model  40.0s        38.5s     8 (2, 1)                 accuracy 62.00%  -"])
    }

    /// How a resumed study runs: what is given now, else what it first ran with, else the defaults.
    func testExecutionRequestPrefersGivenThenStoredThenDefaults() {
        let was = StudyExecution(workers: 3, threads: 6, threadsPerTrial: 2, engine: "ray")
        XCTAssertEqual(ExecutionRequest().resolve(was: was), was)
        XCTAssertEqual(ExecutionRequest(workers: 2).resolve(was: was), StudyExecution(workers: 2, threads: 6, threadsPerTrial: 3, engine: "ray"))
        XCTAssertEqual(ExecutionRequest(threads: 4, engine: "local", defaultWorkers: 1).resolve(was: nil),
                       StudyExecution(workers: 1, threads: 4, threadsPerTrial: 4, engine: "local"))
    }
}

extension StudyEvent {
    /// A search trial's event as a search journals it (tests build journals and reports from these).
    static func searchTrial(_ config: TrialConfig, _ kind: Kind = .finished, id: String? = nil, donor: String? = nil,
                            reuseLayers: Int = 0, error: String? = nil, validationLoss: Double? = nil,
                            validationAccuracy: Double? = nil, testAccuracy: Double? = nil, seconds: Double = 0,
                            wallSeconds: Double = 0, flopsExecuted: Double = 0, epochs: Int = 0,
                            cpuSeconds: Double? = nil) -> StudyEvent {
        var e = StudyEvent(kind, trial: id ?? config.id)
        e.config = config
        (e.donor, e.reuseLayers, e.error, e.attempt) = (donor, reuseLayers, error, 1)
        (e.validationLoss, e.validationAccuracy, e.testAccuracy) = (validationLoss, validationAccuracy, testAccuracy)
        (e.seconds, e.wallSeconds, e.cpuSeconds, e.epochs) = (seconds, wallSeconds, cpuSeconds, epochs)
        (e.flopsExecuted, e.flopsSkipped) = (flopsExecuted, 0)
        return e
    }

    /// An hpo trial's event as an hpo journals it (nan values are null).
    static func hpoTrial(_ number: Int, _ kind: Kind, params: [String: HPOValue], values: [Double],
                         validationAccuracy: Double? = nil, seconds: Double = 0, wallSeconds: Double? = nil,
                         rungs: [Int]? = nil) -> StudyEvent {
        var e = StudyEvent(kind, trial: StudyEvent.hpoID(number))
        (e.number, e.params, e.values) = (number, params, values.map { $0.isNaN ? nil : $0 })
        (e.validationAccuracy, e.seconds, e.wallSeconds, e.rungs) = (validationAccuracy, seconds, wallSeconds, rungs)
        return e
    }
}

/// The line a strata of the journal format before `StudyEvent` wrote for `e`: search's trial
/// state (`id`, `status`), hpo's (camelCase, `trial` its number, `complete`, `running`) or its
/// final's (`"event": "final"`). That format had no `proposed` search lines and no `started` hpo lines.
func legacyLine(_ e: StudyEvent) throws -> String {
    var d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.line.utf8)) as? [String: Any])
    for key in ["format", "event", "trial", "number"] { d[key] = nil }
    if e.config != nil {
        d["id"] = e.trial
        d["status"] = e.status.rawValue
    } else {
        var old: [String: Any] = ["trial": e.trialNumber]
        for (key, value) in d {
            let parts = key.split(separator: "_")
            old[String(parts[0]) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()] = value
        }
        if e.event.isFinal {
            old["event"] = "final"
            let statuses: [StudyEvent.Kind: String] = [.finalStarted: "started", .finalFinished: "finished", .finalFailed: "failed"]
            old["status"] = statuses[e.event]
        } else {
            old["status"] = e.status == .finished ? "complete" : e.status.rawValue
            old["values"] = e.objectives.map { $0.isNaN ? "nan" as Any : $0 as Any }
        }
        d = old
    }
    return String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self)
}
