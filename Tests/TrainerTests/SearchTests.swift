import XCTest
import GPUTensor
@testable import Trainer

/// A deterministic stand-in for training: validation loss from the config alone, failures on
/// request. Lets the engine tests run hundreds of trials in milliseconds.
func fakeOutcome(_ job: TrialJob, failing: Set<String> = []) -> TrialOutcome {
    if failing.contains(job.id) { return .failed(job.id, "diverged: training loss nan at epoch 1") }
    let t = job.trial!
    let loss = 2.0 - 0.1 * Double(t.convLayers) + abs(log10(t.lr) + 3) * 0.05 + Double(t.batchSize) / 1000
        + Double(t.hidden.reduce(0, +)) / 10000
    return TrialOutcome(id: job.id, status: .finished, validationLoss: loss, validationAccuracy: 1 / loss, testAccuracy: 0.5,
                        seconds: Double(t.convLayers), flopsExecuted: 100, flopsSkipped: job.donor == nil ? 0 : 50, epochs: t.epochs)
}

/// Simulates a search process killed after `limit` results: poll throws once the limit is hit.
final class InterruptingExecutor: TrialExecutor {
    struct Killed: Error {}
    let inner: InProcessExecutor
    var remaining: Int
    init(limit: Int, body: @escaping (TrialJob) -> TrialOutcome = { fakeOutcome($0) }) {
        remaining = limit
        inner = InProcessExecutor(body: body)
    }
    var freeSlots: Int { inner.freeSlots }
    func submit(_ job: TrialJob) throws { try inner.submit(job) }
    func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        if remaining == 0 { throw Killed() }
        remaining -= 1
        return try inner.poll(timeout: timeout)
    }
    func cancelAll() {}
}

final class SearchTests: XCTestCase {
    let dummyData = DataConfig(kind: "cifar10", path: "/nonexistent", augment: false)

    func testPresetsDryRunToThePublishedCounts() throws {
        let cases: [(String, Int, Int)] = [("seed000-small", 252, 168), ("seed000-large", 756, 504)]
        for (name, total, withDonor) in cases {
            let space = try XCTUnwrap(SearchSpace.preset(name))
            for reuse in ReuseStrategy.allCases {
                let plan = try SearchSettings(space: space, reuse: reuse, data: dummyData).plan()
                XCTAssertEqual(plan.count, total, "\(name) \(reuse)")
                XCTAssertEqual(Set(plan.map(\.id)).count, total, "ids are distinct")
                XCTAssertEqual(plan.filter { $0.reuseLayers > 0 }.count, reuse == .none ? 0 : withDonor, "\(name) \(reuse)")
                if reuse == .paper {
                    XCTAssertEqual(plan.compactMap(\.fixedDonor).count, withDonor)
                    let byId = Dictionary(uniqueKeysWithValues: plan.map { ($0.id, $0.config) })
                    for p in plan {
                        guard let d = p.fixedDonor, let donor = byId[d] else { continue }
                        XCTAssertEqual(donor, p.config.withConvLayers(p.config.convLayers - 1))
                        XCTAssertEqual(p.reuseLayers, p.config.convLayers - 1)
                    }
                }
            }
        }
        XCTAssertEqual(SearchSpace.seed000Hidden.count, 7)
    }

    func testTrialIdIsAStableHashOfTheContent() {
        XCTAssertEqual(fnv1a64Hex(""), "cbf29ce484222325")   // FNV-1a 64 test vectors
        XCTAssertEqual(fnv1a64Hex("a"), "af63dc4c8601ec8c")
        let t = TrialConfig(convLayers: 2, filters: 18, hidden: [500, 50], lr: 0.001, batchSize: 20, epochs: 10)
        XCTAssertEqual(t.canonicalJSON, #"{"batch_size":20,"conv_layers":2,"epochs":10,"filters":18,"hidden":[500,50],"kernel":3,"lr":0.001,"model":"cnn","optimizer":"adam","seed":0}"#)
        XCTAssertEqual(t.id, fnv1a64Hex(t.canonicalJSON))
        XCTAssertNotEqual(t.id, t.withConvLayers(3).id)
        var u = t
        u.lr = 0.0001
        XCTAssertNotEqual(t.id, u.id)
        XCTAssertEqual(SearchPlan.make([t, t, u], reuse: .none).count, 2, "the same trial is planned once")
    }

    func testSpaceFileErrorsNameTheKeyAndTheFile() {
        func error(_ text: String) -> String {
            do { _ = try SearchSpace.parse(Array(text.utf8), file: "s.json"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error(#"{"grid": {"conv_layers": [1]}, "epoch": 3}"#),
                       "s.json: unknown key 'epoch' (known: epochs, grid, model, optimizer, random, seed)")
        XCTAssertTrue(error(#"{"grid": {"filterz": [1]}}"#).hasPrefix("s.json: unknown key 'grid.filterz'"))
        XCTAssertTrue(error(#"{"random": {"lr": {"normal": [1, 2]}}}"#).hasPrefix("s.json: unknown key 'random.lr.normal'"))
        XCTAssertTrue(error(#"{"grid": {"lr": ["x"]}}"#).contains("'grid.lr' must hold numbers"))
        XCTAssertTrue(error(#"{"grid": {"conv_layers": [4], "filters": [8], "hidden": [[5]], "lr": [0.1], "batch_size": [4]}}"#)
            .contains("conv_layers must be 1 to 3"))
        XCTAssertTrue(error("{").hasPrefix("s.json: not valid JSON at byte"))
    }

    func testSpaceFileGridAndSeededRandomSearch() throws {
        let text = #"""
        {"model": "cnn", "grid": {"conv_layers": [1,2,3], "filters": [18], "kernel": [3], "hidden": [[500],[250,50]],
         "lr": [0.001], "batch_size": [40]}, "epochs": 4, "optimizer": "adam"}
        """#
        let space = try SearchSpace.parse(Array(text.utf8), file: "s.json")
        XCTAssertEqual(space.gridPoints.count, 6)
        XCTAssertEqual(space.gridPoints.map(\.convLayers), [1, 1, 2, 2, 3, 3], "donors come first")
        XCTAssertEqual(space.epochs, 4)

        var ranged = space
        ranged.ranges = ["lr": .logUniform(1e-4, 1e-2), "batch_size": .intUniform(10, 40)]
        XCTAssertThrowsError(try SearchStrategy.grid.makeSampler(space: ranged))
        var a = try SearchStrategy.random(trials: 12, seed: 5).makeSampler(space: ranged)
        var b = try SearchStrategy.random(trials: 12, seed: 5).makeSampler(space: ranged)
        let c = try SearchStrategy.random(trials: 12, seed: 6).makeSampler(space: ranged)
        let pa = a.propose(limit: .max, finished: []), pb = b.propose(limit: .max, finished: [])
        var cc = c
        XCTAssertEqual(pa, pb, "seeded")
        XCTAssertNotEqual(pa, cc.propose(limit: .max, finished: []))
        XCTAssertEqual(pa.count, 12)
        XCTAssertEqual(Set(pa.map(\.id)).count, 12)
        XCTAssertTrue(pa.allSatisfy { (1e-4...1e-2).contains($0.lr) && (10...40).contains($0.batchSize) })
        XCTAssertEqual(pa.map(\.convLayers), pa.map(\.convLayers).sorted())
        XCTAssertTrue(a.isExhausted)
        XCTAssertEqual(pa, ranged.randomPoints(count: 12, seed: 5), "through the sampler protocol, the draw as it is")
        var grid = try SearchStrategy.grid.makeSampler(space: space)
        XCTAssertEqual(grid.propose(limit: .max, finished: []), space.gridPoints, "grid points survive the parameters' round trip")
    }

    func testJournalIgnoresATornLastLineAndCutsItBeforeAppending() throws {
        let dir = try makeTemporaryDirectory(self)
        let journal = SearchJournal(path: dir + "/journal.jsonl")
        let t = TrialConfig(convLayers: 1, filters: 4, hidden: [8], lr: 0.01, batchSize: 8, epochs: 1)
        let record = StudyEvent.searchTrial(t, validationLoss: 1.5, validationAccuracy: 0.4, testAccuracy: 0.3, seconds: 2,
                                            wallSeconds: 3, flopsExecuted: 10, epochs: 1)
        try journal.append(record)
        // A kill in the middle of the next write leaves half a line.
        let fh = try XCTUnwrap(FileHandle(forWritingAtPath: journal.path))
        fh.seekToEndOfFile()
        fh.write(Data(#"{"attempt":1,"conf"#.utf8))
        fh.closeFile()
        XCTAssertEqual(try journal.read(), [record])
        var second = record
        second.config!.lr = 0.02
        second.trial = second.config!.id
        try journal.append(second)
        XCTAssertEqual(try journal.read(), [record, second])
        XCTAssertEqual(try String(contentsOfFile: journal.path, encoding: .utf8).split(separator: "\n").count, 2)
    }

    func testEngineRunsDonorsFirstAndRecordsFailuresWithoutStopping() throws {
        let dir = try makeTemporaryDirectory(self)
        let space = SearchSpace(name: "t", convLayers: [1, 2, 3], filters: [4], hidden: [[8], [4]], lr: [0.01, 0.001],
                                batchSize: [8], epochs: 1)
        let settings = SearchSettings(space: space, reuse: .paper, data: dummyData)
        let plan = try settings.plan()
        let failing: Set<String> = [plan.first { $0.config.convLayers == 1 }!.id]
        let executor = InProcessExecutor(body: { fakeOutcome($0, failing: failing) })
        let engine = SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: executor, threadsPerTrial: 1)
        // Donors need checkpoints: give each trial an empty stand-in so that PrefixStore is exercised.
        engine.prefixSource = { _ in try self.writeFakeCheckpoint(layers: 3, dir: dir) }
        let records = try engine.run()
        XCTAssertEqual(records.count, 12)
        XCTAssertEqual(records.filter { $0.status == .failed }.map(\.id), Array(failing))
        let order = executor.submitted.map(\.id)
        for job in executor.submitted {
            if let d = job.donor { XCTAssertLessThan(order.firstIndex(of: d)!, order.firstIndex(of: job.id)!) }
        }
        // The failed 1-layer trial's dependant trained from scratch; the rest got their donors.
        let dependant = plan.first { $0.fixedDonor == failing.first }!
        XCTAssertNil(records.first { $0.id == dependant.id }!.donor)
        XCTAssertEqual(records.filter { $0.donor != nil }.count, 7)
        XCTAssertEqual(try SearchJournal(path: dir + "/journal.jsonl").settled().count, 12)
        // Every trial's events as an hpo's: proposed, started, then its end.
        let events = Dictionary(grouping: try SearchJournal(path: dir + "/journal.jsonl").read(), by: \.id).mapValues { $0.map(\.event) }
        XCTAssertEqual(Set(events.values), [[.proposed, .started, .finished], [.proposed, .started, .failed]])

        // --retry-failed reruns the failed trial, now succeeding, then the trials that depend on
        // it (they ran without it, or on a donor that ran again): the 2- and 3-layer trials of its chain.
        let again = InProcessExecutor(body: { fakeOutcome($0) })
        let retry = SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: again, threadsPerTrial: 1,
                                 retryFailed: true)
        retry.prefixSource = engine.prefixSource
        let after = try retry.run()
        let chain = [failing.first!, dependant.id, plan.first { $0.fixedDonor == dependant.id }!.id]
        XCTAssertEqual(again.submitted.map(\.id), chain)
        XCTAssertEqual(again.submitted.map(\.attempt), [2, 2, 2])
        XCTAssertEqual(after.filter { $0.status == .failed }.count, 0)
        XCTAssertEqual(after.first { $0.id == dependant.id }?.donor, failing.first)
        // Without the flag a resumed search does nothing more.
        let idle = InProcessExecutor(body: { fakeOutcome($0) })
        _ = try SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: idle, threadsPerTrial: 1).run()
        XCTAssertTrue(idle.submitted.isEmpty)
    }

    func testTheDiskBudgetRemovesOnlyPrefixesNoTrialStillNeeds() throws {
        let space = SearchSpace(name: "t", convLayers: [1, 2, 3], filters: [4], hidden: [[8], [4]], lr: [0.01, 0.001],
                                batchSize: [8], epochs: 1)
        let settings = SearchSettings(space: space, reuse: .paper, data: dummyData)
        func search(budget: Int?) throws -> (records: [StudyEvent], dir: String, missing: [String]) {
            let dir = try makeTemporaryDirectory(self)
            var missing: [String] = []
            let executor = InProcessExecutor(body: { job in
                // Every trial that reuses layers finds its donor's prefix on disk when it runs.
                if let p = job.prefixPath, !FileManager.default.fileExists(atPath: p) { missing.append(job.id) }
                return fakeOutcome(job)
            })
            let engine = SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: executor, threadsPerTrial: 1)
            engine.prefixSource = { _ in try self.writeFakeCheckpoint(layers: 3, dir: dir) }
            if let budget { engine.prefixBudget = budget }
            return (try engine.run(), dir, missing)
        }
        let unlimited = try search(budget: nil)
        let tight = try search(budget: 0)
        XCTAssertEqual(tight.missing, [])
        XCTAssertEqual(tight.records.map(\.donor), unlimited.records.map(\.donor))
        XCTAssertEqual(tight.records.filter { $0.donor != nil }.count, 8)
        // Nothing is needed once every trial has run: a budget of 0 leaves no prefix behind.
        let usage = SearchDirectory(path: tight.dir).prefixes.usage(budget: 0)
        XCTAssertEqual(usage.keptFiles, 0)
        XCTAssertEqual(usage.evictedFiles, Set(tight.records.compactMap(\.prefix)).count)
        XCTAssertEqual(try SearchDirectory(path: tight.dir).writeSummaryAndReport(prefixBudget: 0).prefixStore, usage)
        // The default budget keeps every prefix of this small search.
        XCTAssertEqual(SearchDirectory(path: unlimited.dir).prefixes.usage().evictedFiles, 0)
        XCTAssertGreaterThan(SearchDirectory(path: unlimited.dir).prefixes.usage().keptFiles, 0)
    }

    func testBestPrefixWaitsForAllCandidatesAndTakesTheLowestValidationLoss() throws {
        let dir = try makeTemporaryDirectory(self)
        let space = SearchSpace(name: "t", convLayers: [1, 2], filters: [4, 6], hidden: [[8]], lr: [0.1, 0.01, 0.001],
                                batchSize: [8], epochs: 1)
        let settings = SearchSettings(space: space, reuse: .bestPrefix, data: dummyData)
        let executor = InProcessExecutor(body: { fakeOutcome($0) })
        let engine = SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: executor, threadsPerTrial: 1)
        engine.prefixSource = { _ in try self.writeFakeCheckpoint(layers: 2, dir: dir) }
        let records = try engine.run()
        let byId = Dictionary(uniqueKeysWithValues: records.map { ($0.id, $0) })
        for r in records where r.config!.convLayers == 2 {
            // Candidates: the 1-layer trials of the same filters; fakeOutcome makes lr 0.001 the best.
            let donor = try XCTUnwrap(r.donor.flatMap { byId[$0] })
            XCTAssertEqual(donor.config!.convLayers, 1)
            XCTAssertEqual(donor.config!.filters, r.config!.filters)
            XCTAssertEqual(donor.config!.lr, 0.001)
            XCTAssertEqual(r.reuseLayers, 1)
        }
        // One prefix file per donor, shared by every trial that freezes it.
        XCTAssertEqual(Set(records.compactMap(\.prefix)).count, 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/prefixes").count, 2)
        // All 1-layer trials ran before any 2-layer one (the donor is decided on all candidates).
        let layers = executor.submitted.map { $0.trial!.convLayers }
        XCTAssertEqual(layers, layers.sorted())
    }

    func testAnInterruptedSearchResumesWithoutRedoingOrLosingATrial() throws {
        let space = SearchSpace(name: "t", convLayers: [1, 2, 3], filters: [4], hidden: [[8], [4]], lr: [0.01, 0.001],
                                batchSize: [8, 16], epochs: 1)
        let settings = SearchSettings(space: space, reuse: .paper, data: dummyData)
        let reference = try makeTemporaryDirectory(self)
        let plain = SearchEngine(directory: SearchDirectory(path: reference), settings: settings,
                                 executor: InProcessExecutor(body: { fakeOutcome($0) }), threadsPerTrial: 1)
        plain.prefixSource = { _ in try self.writeFakeCheckpoint(layers: 3, dir: reference) }
        let expected = try plain.run()

        let dir = try makeTemporaryDirectory(self)
        var runs = 0, submitted: [String] = []
        for limit in [3, 1, 7, 100] {   // killed after 3, 1 and 7 results, then left to finish
            let executor = InterruptingExecutor(limit: limit)
            let engine = SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: executor, threadsPerTrial: 1)
            engine.prefixSource = { _ in try self.writeFakeCheckpoint(layers: 3, dir: dir) }
            runs += 1
            do { _ = try engine.run() } catch is InterruptingExecutor.Killed {}
            submitted += executor.inner.submitted.map(\.id)
        }
        let journal = try SearchJournal(path: dir + "/journal.jsonl").settled()
        XCTAssertEqual(journal.count, 24, "every trial exactly once")
        XCTAssertEqual(Set(journal.map(\.id)).count, 24)
        func metrics(_ r: [StudyEvent]) -> [String: [Double?]] {
            Dictionary(uniqueKeysWithValues: r.map { ($0.id, [$0.validationLoss, $0.validationAccuracy, $0.testAccuracy, $0.flopsSkipped]) })
        }
        XCTAssertEqual(metrics(journal), metrics(expected))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: journal.map { ($0.id, $0.donor) }),
                       Dictionary(uniqueKeysWithValues: expected.map { ($0.id, $0.donor) }))
        // A trial killed while running (submitted, no result) is submitted again, nothing else is.
        XCTAssertEqual(submitted.count, 24 + 3, "one rerun per kill: the trial that was running")
    }

    /// A checkpoint with the tensors PrefixStore copies (cnn conv layers 0..<layers).
    func writeFakeCheckpoint(layers: Int, dir: String) throws -> String {
        let path = dir + "/fake.safetensors"
        if FileManager.default.fileExists(atPath: path) { return path }
        var file = SafeTensors()
        for i in 0..<layers {
            file.append("features.\(3 * i).weight", shape: [2], floats: [1, 2])
            file.append("features.\(3 * i).bias", shape: [1], floats: [3])
        }
        file.append("classifier.0.weight", shape: [1], floats: [4])
        try file.write(to: path)
        return path
    }
}

/// A sampler that looks at results: one 1-conv trial per lr, then the 2-conv version of the best
/// one found so far. It plugs into the engine through the one sampler protocol (`HPOSampler`) alone.
struct RefiningSampler: HPOSampler {
    let lrs = [0.1, 0.01, 0.001]

    func suggest(_ space: HPOSpace, history: [HPOObservation], trialNumber: Int) -> [String: HPOValue] {
        var p: [String: HPOValue] = ["conv_layers": .choice("1"), "filters": .choice("4"), "kernel": .choice("3"),
                                     "hidden": .choice("8"), "batch_size": .choice("8")]
        if trialNumber < lrs.count {
            p["lr"] = .float(lrs[trialNumber])
        } else {
            let best = history.min { $0.value < $1.value }!
            p["lr"] = best.params["lr"]
            p["conv_layers"] = .choice("2")
        }
        return p
    }
}

extension SearchTests {
    func testAnAdaptiveSamplerPlugsInWithoutEngineChanges() throws {
        let dir = try makeTemporaryDirectory(self)
        let space = SearchSpace(name: "adaptive", convLayers: [1, 2], filters: [4], hidden: [[8]], lr: [0.1], batchSize: [8], epochs: 1)
        let executor = InProcessExecutor(body: { fakeOutcome($0) })
        let engine = SearchEngine(directory: SearchDirectory(path: dir), settings: SearchSettings(space: space, reuse: .paper, data: dummyData),
                                  executor: executor, threadsPerTrial: 1)
        engine.sampler = SearchSampling(parameters: try SearchParameters(space: space), sampler: RefiningSampler(), count: 4, startup: 1)
        engine.prefixSource = { _ in try self.writeFakeCheckpoint(layers: 2, dir: dir) }
        let records = try engine.run()
        XCTAssertEqual(records.count, 4)
        XCTAssertEqual(executor.submitted.map { $0.trial!.lr }, [0.1, 0.01, 0.001, 0.001], "fakeOutcome: lr 0.001 is best")
        let last = try XCTUnwrap(executor.submitted.last)
        XCTAssertEqual(last.trial?.convLayers, 2)
        XCTAssertEqual(last.donor, records.first { $0.config!.convLayers == 1 && $0.config!.lr == 0.001 }?.id,
                       "the paper donor of a proposed trial is found in the plan")
    }
}

extension SearchTests {
    /// CMA-ES behind the same sampler protocol as TPE: a search over a continuous lr range, one
    /// worker, proposes the same trials twice, all inside the range, learning toward the fake
    /// outcome's best lr (1e-3).
    func testCMAESStrategyProposesDeterministicallyInsideTheRanges() throws {
        var space = SearchSpace(name: "cma", convLayers: [1], filters: [4], hidden: [[8]], lr: [0.1], batchSize: [8], epochs: 1)
        space.ranges = ["lr": .logUniform(1e-5, 1e-1)]
        func search() throws -> [StudyEvent] {
            let dir = try makeTemporaryDirectory(self)
            let settings = SearchSettings(space: space, strategy: .cmaes(trials: 16, seed: 2), reuse: .none, data: dummyData)
            return try SearchEngine(directory: SearchDirectory(path: dir), settings: settings,
                                    executor: InProcessExecutor(body: { fakeOutcome($0) }), threadsPerTrial: 1).run()
        }
        let a = try search(), b = try search()
        XCTAssertEqual(a.count, 16)
        XCTAssertEqual(a.map(\.config), b.map(\.config))
        XCTAssertTrue(a.allSatisfy { (1e-5...1e-1).contains($0.config!.lr) })
        func distance(_ r: StudyEvent) -> Double { abs(log10(r.config!.lr) + 3) }
        let early = a.prefix(8).map(distance).reduce(0, +), late = a.suffix(8).map(distance).reduce(0, +)
        XCTAssertLessThan(late, early, "the second half is nearer the best lr")
    }
}
