import XCTest
import GPUTensor
#if canImport(Glibc)
import Glibc
#endif
@testable import Trainer

/// SIGINT/SIGTERM as a request to stop (`Interruption`), and infrastructure faults that stop a
/// search: the run or study is left resumable, marked as how it stopped, and ends where an
/// uninterrupted one would.
final class InterruptionTests: XCTestCase {
    let dummyData = DataConfig(kind: "cifar10", path: "/nonexistent", augment: false)

    override func tearDown() { Interruption.reset() }

    func testAnInterruptedTrainingIsMarkedAndResumesToTheSameWeights() throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 72, test: 20)
        let config = smallConfig(data: data)
        let straight = RunDirectory(path: try makeTemporaryDirectory(self))
        let a = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        try a.fit(in: straight)

        // SIGTERM in the middle of epoch 2: the step after it is not taken.
        let dir = RunDirectory(path: try makeTemporaryDirectory(self))
        let b = try TrainingRun(config: config, backend: CPUBackend(), data: RunData.load(config.data, seed: config.seed))
        var observer = TrainingObserver()
        observer.batch = { epoch, done, _, _ in if epoch == 2 && done == 1 { Interruption.request(SIGTERM) } }
        XCTAssertThrowsError(try b.fit(in: dir, observer: observer)) { error in
            let e = error as? InterruptedError
            XCTAssertEqual(e?.signal, SIGTERM)
            XCTAssertEqual(e?.exitCode, 143)
            XCTAssertEqual(e?.resume, "strata train --resume \(dir.path)")
            XCTAssertTrue("\(error)".contains("the last checkpoint is epoch 1"), "\(error)")
        }
        let manifest = try dir.readJSON(RunManifest.self, from: dir.manifestPath)
        XCTAssertEqual(manifest.status, .interrupted)
        XCTAssertEqual(manifest.last?.epoch, 1)
        XCTAssertEqual(manifest.message, "interrupted by SIGTERM")
        XCTAssertEqual(try dir.readMetrics().count, 1)

        Interruption.reset()
        let c = try TrainingRun.resume(from: dir, backend: CPUBackend())
        XCTAssertEqual(c.epoch, 1)
        try c.fit(in: dir)
        XCTAssertEqual(try dir.readJSON(RunManifest.self, from: dir.manifestPath).status, .complete)
        let expected = try stateValues(a), actual = try stateValues(c)
        for (name, values) in expected { XCTAssertEqual(actual[name], values, "\(name) differs after the interrupted resume") }
        XCTAssertEqual(a.history.map(\.trainLoss), c.history.map(\.trainLoss))
    }

    func space() -> SearchSpace {
        SearchSpace(name: "t", convLayers: [1, 2, 3], filters: [4], hidden: [[8], [4]], lr: [0.01, 0.001], batchSize: [8], epochs: 1)
    }

    func engine(_ dir: String, _ settings: SearchSettings, _ executor: TrialExecutor, retry: Bool = false) -> SearchEngine {
        let e = SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: executor, threadsPerTrial: 1,
                             retryFailed: retry)
        e.prefixSource = { _ in
            // A checkpoint with the tensors PrefixStore copies (as SearchTests' stand-in).
            let path = dir + "/fake.safetensors"
            if FileManager.default.fileExists(atPath: path) { return path }
            var file = SafeTensors()
            for i in 0..<3 {
                file.append("features.\(3 * i).weight", shape: [2], floats: [1, 2])
                file.append("features.\(3 * i).bias", shape: [1], floats: [3])
            }
            try file.write(to: path)
            return path
        }
        return e
    }

    /// What a resumed search must reproduce: per trial its metrics and the donor it used.
    func results(_ records: [StudyEvent]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: records.map {
            ($0.id, "\($0.status) \($0.validationLoss ?? -1) \($0.testAccuracy ?? -1) \($0.donor ?? "-") \($0.flopsSkipped ?? 0)")
        })
    }

    func testAnInterruptedSearchIsMarkedAndItsResumeEndsWhereAnUninterruptedOneWould() throws {
        let settings = SearchSettings(space: space(), reuse: .paper, data: dummyData)
        let reference = try makeTemporaryDirectory(self)
        let expected = try engine(reference, settings, InProcessExecutor(body: { fakeOutcome($0) })).run()

        let dir = try makeTemporaryDirectory(self)
        var count = 0
        let stopping = InProcessExecutor(body: { job in
            count += 1
            if count == 5 { Interruption.request(SIGINT) }   // arrives while the 5th trial runs
            return fakeOutcome(job)
        })
        XCTAssertThrowsError(try engine(dir, settings, stopping).run()) { error in
            XCTAssertEqual((error as? InterruptedError)?.exitCode, 130)
            XCTAssertEqual((error as? InterruptedError)?.resume, "strata search --resume \(dir)")
        }
        // The 5th trial's outcome came with the signal: not journaled, it runs again.
        XCTAssertEqual(try SearchJournal(path: dir + "/journal.jsonl").settled().count, 4)
        let sessions = try SearchDirectory(path: dir).sessions()
        XCTAssertEqual(sessions.map(\.end), [.interrupted])
        XCTAssertEqual(sessions.last?.signal, SIGINT)

        Interruption.reset()
        let again = InProcessExecutor(body: { fakeOutcome($0) })
        let after = try engine(dir, settings, again).run()
        XCTAssertEqual(again.submitted.count, 12 - 4)
        XCTAssertEqual(results(after), results(expected))
        XCTAssertEqual(try SearchDirectory(path: dir).sessions().map(\.end), [.interrupted, .complete])
    }

    func testAnInfrastructureFaultStopsTheSearchInsteadOfFailingTheTrial() throws {
        let settings = SearchSettings(space: space(), reuse: .paper, data: dummyData)
        let reference = try makeTemporaryDirectory(self)
        let expected = try engine(reference, settings, InProcessExecutor(body: { fakeOutcome($0) })).run()

        let dir = try makeTemporaryDirectory(self)
        var count = 0
        let full = InProcessExecutor(body: { job in
            count += 1
            guard count == 3 else { return fakeOutcome(job) }
            var o = TrialOutcome.failed(job.id, "SystemCallError(call: \"write\", errno: 28)")
            o.fault = "\(job.directory)/run/epoch-0001.safetensors: write failed: No space left on device (errno 28)"
            return o
        })
        XCTAssertThrowsError(try engine(dir, settings, full).run()) { error in
            XCTAssertTrue(error is InfrastructureFault, "\(error)")
            XCTAssertTrue("\(error)".contains("epoch-0001.safetensors"), "the file is named: \(error)")
            XCTAssertTrue("\(error)".contains("strata search --resume \(dir)"), "\(error)")
        }
        let journal = try SearchJournal(path: dir + "/journal.jsonl").settled()
        XCTAssertEqual(journal.count, 2)
        XCTAssertFalse(journal.contains { $0.status == .failed }, "a full disk is not the trial's failure")
        XCTAssertEqual(try SearchDirectory(path: dir).sessions().map(\.end), [.stopped])

        let after = try engine(dir, settings, InProcessExecutor(body: { fakeOutcome($0) })).run()
        XCTAssertEqual(results(after), results(expected))
    }

    func testErrorsOfTheMachineAreToldFromErrorsOfTheTrial() {
        XCTAssertNotNil(InfrastructureFault.describe(SystemCallError(call: "write", path: "x", errno: ENOSPC)))
        XCTAssertNotNil(InfrastructureFault.describe(SystemCallError(call: "rename", path: "x", errno: EROFS)))
        XCTAssertNotNil(InfrastructureFault.describe(SearchError("x.json cannot be written: open failed: Permission denied (errno 13)")))
        XCTAssertNotNil(InfrastructureFault.describe(SearchError(#"x cannot be written: SystemCallError(call: "write", errno: 28)"#)))
        XCTAssertNil(InfrastructureFault.describe(SystemCallError(call: "open", path: "x", errno: ENOENT)))
        XCTAssertNil(InfrastructureFault.describe(SearchError("diverged: training loss nan at epoch 1")))
        XCTAssertNil(InfrastructureFault.describe(SearchError("errno 130 is no errno 13 nor 28")))
    }

    func testAWorkerKilledFromOutsideIsAFaultAndOneThatStoppedOnAFaultToo() throws {
        let dir = try makeTemporaryDirectory(self)
        let job = TrialJob(id: "t", trial: nil, data: dummyData, device: "cpu", threads: 1, directory: dir, donor: nil,
                           reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false, cacheBudget: 0, attempt: 1)
        let killed = ProcessExecutor.outcome(of: job, status: SIGKILL)
        XCTAssertEqual(killed.status, .failed)
        XCTAssertTrue(killed.fault?.contains("killed by signal 9") ?? false, "\(killed)")
        let stopped = ProcessExecutor.outcome(of: job, status: TrialRunner.faultExitStatus << 8)
        XCTAssertNotNil(stopped.fault)
        let failed = ProcessExecutor.outcome(of: job, status: 1 << 8)
        XCTAssertNil(failed.fault, "an ordinary failure is the trial's")
        let crashed = ProcessExecutor.outcome(of: job, status: SIGSEGV)
        XCTAssertNil(crashed.fault, "a crash of its own is the trial's")
        XCTAssertEqual(crashed.status, .failed)
    }

    func testARetriedDonorMakesItsDependentsWaitAndRerun() throws {
        for reuse in [ReuseStrategy.paper, .bestPrefix] {
            let settings = SearchSettings(space: space(), reuse: reuse, data: dummyData)
            let reference = try makeTemporaryDirectory(self)
            let expected = try engine(reference, settings, InProcessExecutor(body: { fakeOutcome($0) })).run()

            // A 1-layer trial fails (a worker killed, say); its dependents ran without it.
            let dir = try makeTemporaryDirectory(self)
            let plan = try settings.plan()
            // The best 1-layer trial (fakeOutcome: lr 0.001, the smaller hidden layer): every choice depends on it.
            let donor = plan.first { $0.config.convLayers == 1 && $0.config.lr == 0.001 && $0.config.hidden == [4] }!.id
            let first = try engine(dir, settings, InProcessExecutor(body: { fakeOutcome($0, failing: [donor]) })).run()
            XCTAssertNotEqual(results(first), results(expected), "\(reuse): the failure changed the search")

            let retry = InProcessExecutor(body: { fakeOutcome($0) })
            let after = try engine(dir, settings, retry, retry: true).run()
            XCTAssertEqual(retry.submitted.first?.id, donor)
            XCTAssertGreaterThan(retry.submitted.count, 1, "\(reuse): its dependents ran again")
            XCTAssertEqual(results(after), results(expected), "\(reuse): --retry-failed ends where an uninterrupted search would")
            // Every dependent ran after its donor: the journal's donor is the one it used.
            let order = retry.submitted.map(\.id)
            for job in retry.submitted { if let d = job.donor, let i = order.firstIndex(of: d) { XCTAssertLessThan(i, order.firstIndex(of: job.id)!) } }
        }
    }

    func testAnInterruptedHPOIsMarkedAndItsResumeMatchesAnUninterruptedOne() throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 96, test: 20)
        var base = smallConfig(data: data, filters: [8, 12], epochs: 3, augment: false, optimizer: .adam(learningRate: 1e-3))
        base.batchSize = 8
        let space = try HPOSpace([("lr", .float(low: 1e-4, high: 1e-1, log: true)), ("batch_size", .categorical(["8", "16"]))])
        let config = HPOConfig(trial: base, final: base, space: space, sampler: .tpe, pruner: .asha, objective: .loss,
                               trials: 4, finalEpochs: 0, proxy: nil)
        let root = try makeTemporaryDirectory(self)
        let whole = try HPORun(config: config, directory: RunDirectory(path: root + "/a"), backend: CPUBackend(),
                               data: try RunData.load(config.trial.data, seed: 11))
        try whole.run()

        let dir = RunDirectory(path: root + "/b")
        do {   // the run holds its directory's lock until it goes
            let stopped = try HPORun(config: config, directory: dir, backend: CPUBackend(), data: try RunData.load(config.trial.data, seed: 11))
            var jobs = 0
            stopped.executor = InProcessExecutor(body: { job in
                jobs += 1
                if jobs == 3 { Interruption.request(SIGTERM) }   // the third job stops at its first step
                return TrialRunner.run(job)
            })
            XCTAssertThrowsError(try stopped.run()) { error in
                XCTAssertEqual((error as? InterruptedError)?.exitCode, 143)
                XCTAssertEqual((error as? InterruptedError)?.resume, "strata hpo --resume \(dir.path)")
            }
            XCTAssertEqual(try StudySession.read(dir.path + "/sessions.jsonl").map(\.end), [.interrupted])
            XCTAssertFalse(try HPORun.readJournal(stopped.journalPath).contains { $0.status == .failed }, "a signal is no failure")
        }

        Interruption.reset()
        let resumed = try HPORun(resuming: dir, backend: CPUBackend())
        try resumed.run()
        XCTAssertEqual(resumed.records.map(\.params), whole.records.map(\.params))
        XCTAssertEqual(resumed.records.map(\.values), whole.records.map(\.values))
        XCTAssertEqual(resumed.records.map(\.status), whole.records.map(\.status))
    }

    func testAResumedStudyKeepsHowItRanAndSaysWhenThatChanges() {
        let ran = StudyExecution(workers: 1, threads: 2, threadsPerTrial: 2, engine: "local")
        XCTAssertNil(ran.overrideNotice(ran))
        let notice = ran.overrideNotice(StudyExecution(workers: 2, threads: 2, threadsPerTrial: 1, engine: "local"))
        XCTAssertTrue(notice?.contains("--workers 2 (it ran with 1)") ?? false, notice ?? "nil")
        XCTAssertTrue(notice?.contains("1 threads per trial (it ran with 2)") ?? false, notice ?? "nil")
        var a = SearchSettings(space: space(), reuse: .paper, data: dummyData, execution: ran)
        let b = SearchSettings(space: space(), reuse: .paper, data: dummyData)
        XCTAssertTrue(a.sameSearch(as: b), "how a search runs does not make it another search")
        a.reuse = .none
        XCTAssertFalse(a.sameSearch(as: b))
        XCTAssertEqual(ran.problems(), [])
        XCTAssertEqual(StudyExecution(workers: 0, threads: 0, threadsPerTrial: 3, engine: "mpi").problems().count, 4)
    }
}
