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
        // The journal: started, then one line per segment.
        let lines = try SearchDirectory(path: dir).journal.read()
        XCTAssertEqual(lines.filter { $0.id == ids[0] }.map(\.status), [.running, .running, .finished])
        XCTAssertEqual(lines.filter { $0.id == ids[2] }.map(\.status), [.running, .pruned])
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

    /// A search directory of the journal format before `StudyEvent` (one `TrialRecord` per
    /// line, as written until then) cut short, then resumed: its lines are read and kept, the
    /// new events follow them, and the trials end as in a search never interrupted.
    func testOldFormatSearchJournalResumes() throws {
        let whole = try search(try makeTemporaryDirectory(self), InProcessExecutor(body: outcome)).run()
        let dir = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try search(dir, InterruptingExecutor(limit: 4, body: outcome)).run())
        let path = dir + "/journal.jsonl"
        let old = try SearchJournal(path: path).read()
        XCTAssertTrue(old.contains { $0.status == .running }, "a trial was cut short at a rung")
        let oldText = old.map { SearchJSON.canonical($0) + "\n" }.joined()
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
        XCTAssertTrue(after.allSatisfy { $0.hasPrefix(#"{"attempt""#) && $0.contains(#""format":1"#) }, "new lines are events")
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
        workflow.makeExecutor = { _, _ in InProcessExecutor(body: { job in
            XCTFail("\(job.id) ran again")
            return .failed(job.id, "ran again")
        }) }
        try workflow.resume(root)
        XCTAssertEqual(try SearchDirectory(path: root + "/paper").sessions().map(\.end), [.complete, .complete])
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
