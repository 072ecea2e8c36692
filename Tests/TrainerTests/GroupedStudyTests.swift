import XCTest
import GPUTensor
@testable import Trainer

/// Trial groups inside the study engine (issue 22): searches with `STRATA_TRIAL_GROUPS=on`
/// (the CPU's default, auto, forms none) train same-shaped trials as one `TrialGroup`; each
/// member must end as the same trial trained alone within the library's tolerance
/// (TrialGroupTests: atol 5e-6 + rtol 5e-5 on weights), leave on divergence or pruning, and a
/// grouped search killed and resumed must end with the journal of one never stopped.
final class GroupedStudyTests: XCTestCase {
    var data = ""

    override func setUpWithError() throws {
        data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 160, test: 40)
    }

    override func tearDown() { unsetenv("STRATA_TRIAL_GROUPS") }

    /// One architecture at three learning rates: one group of three.
    func space(lr: [Double] = [0.01, 0.003, 0.001], epochs: Int = 2, optimizer: String = "adam") -> SearchSpace {
        var s = SearchSpace(name: "tiny", convLayers: [1], filters: [4], hidden: [[8]], lr: lr, batchSize: [16], epochs: epochs)
        s.optimizer = optimizer
        return s
    }

    func search(_ space: SearchSpace, groups: String?, pruner: StudyPrunerKind? = nil,
                precision: Precision = .fp32) throws -> (dir: String, records: [StudyEvent], jobs: [TrialJob]) {
        if let groups { setenv("STRATA_TRIAL_GROUPS", groups, 1) } else { unsetenv("STRATA_TRIAL_GROUPS") }
        defer { unsetenv("STRATA_TRIAL_GROUPS") }
        let dir = try makeTemporaryDirectory(self)
        let settings = SearchSettings(space: space, reuse: .none,
                                      data: DataConfig(kind: "cifar10", path: data, validationFraction: 0.25, augment: false),
                                      pruner: pruner, precision: precision)
        let executor = InProcessExecutor()
        let records = try SearchEngine(directory: SearchDirectory(path: dir), settings: settings, executor: executor,
                                       threadsPerTrial: 1).run()
        return (dir, records, executor.submitted)
    }

    /// The journal's events, as written.
    func events(_ dir: String) throws -> [StudyEvent] {
        let text = try String(contentsOfFile: dir + "/journal.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(StudyEvent.self, from: Data($0.utf8)) }
    }

    /// A member's final weights equal the lone trial's within the library's tolerance.
    func assertSameWeights(_ grouped: String, _ alone: String, _ id: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try SafeTensors.read(from: grouped + "/trials/\(id)/run/last.safetensors")
        let b = try SafeTensors.read(from: alone + "/trials/\(id)/run/last.safetensors")
        let names = a.tensors.map(\.name).filter { !$0.hasPrefix("optimizer.") }
        XCTAssertFalse(names.isEmpty, file: file, line: line)
        XCTAssertEqual(Set(names), Set(b.tensors.map(\.name).filter { !$0.hasPrefix("optimizer.") }), file: file, line: line)
        for name in names {
            let x = try a.floats(name), y = try b.floats(name)
            XCTAssertEqual(x.count, y.count, name, file: file, line: line)
            let worst = zip(x, y).map { abs($0 - $1) - (5e-6 + 5e-5 * abs($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 0, "\(id) \(name)", file: file, line: line)
        }
    }

    func testThreeLearningRatesTrainAsOneGroupAndEqualTheirLoneTrials() throws {
        let grouped = try search(space(), groups: "on")
        let alone = try search(space(), groups: "off")
        XCTAssertEqual(grouped.records.map(\.status), [.finished, .finished, .finished], grouped.records.compactMap(\.error).joined())
        // One job for the three, a group's.
        XCTAssertEqual(grouped.jobs.count, 1)
        XCTAssertTrue(grouped.jobs[0].id.hasPrefix("g-"))
        XCTAssertEqual(alone.jobs.count, 3)
        let ids = grouped.records.map(\.id)
        // Each trial's events after its proposal (started, finished) carry the group.
        let journal = try events(grouped.dir).filter { $0.event != .proposed }
        XCTAssertEqual(journal.filter { !$0.event.isOpen }.count, 3)
        for e in journal {
            XCTAssertEqual(e.group?.id, grouped.jobs[0].id)
            XCTAssertEqual(e.group?.members, ids)
        }
        XCTAssertTrue(try events(alone.dir).allSatisfy { $0.group == nil })
        let lone = Dictionary(uniqueKeysWithValues: alone.records.map { ($0.id, $0) })
        for r in grouped.records {
            try assertSameWeights(grouped.dir, alone.dir, r.id)
            let l = try XCTUnwrap(lone[r.id])
            XCTAssertEqual(r.epochs, l.epochs)
            XCTAssertEqual(r.validationLoss!, l.validationLoss!, accuracy: 1e-4 * max(1, l.validationLoss!))
            XCTAssertEqual(r.flopsExecuted, l.flopsExecuted, "each member counts its own work")
            // Each member's run directory is an ordinary one: a summary, metrics per epoch, loadable alone.
            let run = RunDirectory(path: grouped.dir + "/trials/\(r.id)/run")
            XCTAssertEqual(try run.readMetrics().count, 2)
            XCTAssertTrue(run.exists(run.summaryPath))
            XCTAssertFalse(FileManager.default.fileExists(atPath: grouped.dir + "/trials/\(r.id)/group"), "the marker goes once journaled")
        }
    }

    func testADivergingMemberLeavesAndTheOthersFinish() throws {
        let s = space(lr: [0.01, 1e6, 0.001], epochs: 2, optimizer: "sgd")
        let grouped = try search(s, groups: "on")
        let alone = try search(s, groups: "off")
        XCTAssertEqual(grouped.jobs.count, 1)
        let byLR = Dictionary(uniqueKeysWithValues: grouped.records.map { ($0.config?.lr ?? -1, $0) })
        XCTAssertEqual(byLR[1e6]?.status, .failed)
        XCTAssertTrue(byLR[1e6]?.error?.contains("diverged") ?? false, byLR[1e6]?.error ?? "")
        XCTAssertEqual(byLR[1e6]?.status, alone.records.first { $0.config?.lr == 1e6 }?.status)
        for lr in [0.01, 0.001] {
            let r = try XCTUnwrap(byLR[lr])
            XCTAssertEqual(r.status, .finished, r.error ?? "")
            XCTAssertEqual(r.epochs, 2)
            try assertSameWeights(grouped.dir, alone.dir, r.id)
        }
    }

    func testASHAPrunesAMemberAtARungAndTheOthersGoOn() throws {
        // Six learning rates, one group: ASHA (rungs at 1 and 3 epochs, keeping the top third) stops some at rung 1.
        let grouped = try search(space(lr: [0.1, 0.03, 0.01, 0.003, 0.001, 0.0001], epochs: 3), groups: "on", pruner: .asha)
        let statuses = grouped.records.map(\.status)
        XCTAssertTrue(statuses.contains(.pruned), "\(statuses)")
        XCTAssertTrue(statuses.contains(.finished), "\(statuses)")
        // The first segment (to rung 1) ran as one group of three.
        XCTAssertTrue(grouped.jobs[0].id.hasPrefix("g-"))
        let journal = try events(grouped.dir)
        XCTAssertEqual(journal.filter { $0.event == .started }.count, 6)
        XCTAssertTrue(journal.filter { $0.event == .started }.allSatisfy { $0.group?.members.count == 6 })
        for r in grouped.records where r.status == .pruned {
            XCTAssertEqual(r.epochs, r.rungs?.last)
            XCTAssertEqual(try RunDirectory(path: grouped.dir + "/trials/\(r.id)/run").readMetrics().count, r.epochs)
        }
        for r in grouped.records where r.status == .finished { XCTAssertEqual(r.epochs, 3) }
    }

    /// A group trains in its members' precision (each member's run refuses a backend of another).
    func testABF16GroupTrainsInBF16() throws {
        guard (try? BackendFactory.make(.cpu, threads: 1, precision: .bf16)) != nil else {
            throw XCTSkip("this CPU has no AVX-512 BF16")
        }
        let grouped = try search(space(epochs: 1), groups: "on", precision: .bf16)
        XCTAssertEqual(grouped.jobs.count, 1)
        XCTAssertEqual(grouped.records.map(\.status), [.finished, .finished, .finished], grouped.records.compactMap(\.error).joined())
        for r in grouped.records {
            let data = try Data(contentsOf: URL(fileURLWithPath: grouped.dir + "/trials/\(r.id)/run/config.json"))
            let config = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual(config["precision"] as? String, "bf16")
        }
    }

    func testOnTheCPUAutoFormsNoGroups() throws {
        let auto = try search(space(epochs: 1), groups: nil)
        XCTAssertEqual(auto.jobs.count, 3)
        XCTAssertTrue(auto.jobs.allSatisfy { !$0.id.hasPrefix("g-") })
        XCTAssertTrue(try events(auto.dir).allSatisfy { $0.group == nil })
        XCTAssertFalse(FileManager.default.fileExists(atPath: auto.dir + "/groups"))
        XCTAssertFalse(GroupingRule.groups(device: "cpu", mode: .auto))
        XCTAssertTrue(GroupingRule.groups(device: "cuda", mode: .auto))
        XCTAssertTrue(GroupingRule.groups(device: "cuda:1", mode: .auto))
        XCTAssertTrue(GroupingRule.groups(device: "cpu", mode: .on))
        XCTAssertFalse(GroupingRule.groups(device: "cuda", mode: .off))
        XCTAssertEqual(try GroupingRule.mode(environment: nil), .auto)
        XCTAssertThrowsError(try GroupingRule.mode(environment: "yes")) { XCTAssertTrue("\($0)".contains("STRATA_TRIAL_GROUPS=yes")) }
    }

    func testMemoryCapFromTheNetworksShapes() throws {
        let model = try Model(spec: space().gridPoints[0].modelSpec(input: ImageShape(channels: 3, height: 32, width: 32), classes: 10))
        let bytes = GroupingRule.memberBytes(model, batch: 16)
        XCTAssertGreaterThan(bytes, 4 * 4 * model.parameterCount)
        XCTAssertEqual(GroupingRule.cap(memberBytes: bytes, budget: 3 * bytes), 3)
        XCTAssertEqual(GroupingRule.cap(memberBytes: bytes, budget: bytes / 2), 1)
    }

    /// `strata search` with groups, killed with SIGKILL while a group trains and resumed, ends
    /// with the journal of a grouped search never stopped: the same trials once each, the same
    /// metrics bit for bit, the same groups.
    func testKilledGroupedSearchResumesToTheSameJournal() throws {
        let strata = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata").path
        guard FileManager.default.isExecutableFile(atPath: strata) else { throw XCTSkip("no strata binary next to \(CommandLine.arguments[0])") }
        let spaceFile = try makeTemporaryDirectory(self) + "/space.json"
        try Data(#"{"grid": {"conv_layers": [1,2], "filters": [4], "hidden": [[8]], "lr": [0.01, 0.003, 0.001], "batch_size": [16]}, "epochs": 3}"#.utf8)
            .write(to: URL(fileURLWithPath: spaceFile))
        func search(_ dir: String, resume: Bool) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: strata)
            p.arguments = resume ? ["search", "--resume", dir, "--workers", "1", "--threads", "1"]
                : ["search", "--space", spaceFile, "--reuse", "none", "--data", data, "--validation-fraction", "0.25",
                   "--workers", "1", "--threads", "1", "--output", dir]
            var env = ProcessInfo.processInfo.environment
            env["STRATA_TRIAL_GROUPS"] = "on"
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        func wait(until condition: () -> Bool) {
            let deadline = Date().addingTimeInterval(60)
            while !condition() && Date() < deadline { usleep(5_000) }
        }
        /// A member with an epoch in its metrics and no outcome yet: a group mid-way.
        func midGroup(_ dir: String) -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/trials")) ?? []).contains { id in
                let t = dir + "/trials/" + id
                let m = (try? String(contentsOfFile: t + "/run/metrics.jsonl", encoding: .utf8)) ?? ""
                return m.contains("\n") && FileManager.default.fileExists(atPath: t + "/group")
                    && !FileManager.default.fileExists(atPath: t + "/outcome.json")
            }
        }
        let reference = try makeTemporaryDirectory(self) + "/ref"
        let full = try search(reference, resume: false)
        full.waitUntilExit()
        XCTAssertEqual(full.terminationStatus, 0)

        let dir = try makeTemporaryDirectory(self) + "/killed"
        var p = try search(dir, resume: false)
        wait { midGroup(dir) }
        XCTAssertTrue(midGroup(dir), "killed while a group trains")
        kill(p.processIdentifier, SIGKILL); p.waitUntilExit()
        p = try search(dir, resume: true)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)

        // Each trial's end (proposed and started lines come before it; a resume may start one again).
        let got = try events(dir).filter { !$0.event.isOpen }, want = try events(reference).filter { !$0.event.isOpen }
        XCTAssertEqual(got.count, 6, "every trial exactly once")
        XCTAssertEqual(Set(got.map(\.trial)).count, 6)
        func metrics(_ e: [StudyEvent]) -> [String: [Double?]] {
            Dictionary(uniqueKeysWithValues: e.map { ($0.trial, [$0.validationLoss, $0.validationAccuracy, $0.testAccuracy,
                                                                 $0.flopsExecuted, Double($0.epochs ?? -1)]) })
        }
        XCTAssertEqual(metrics(got), metrics(want))
        func groups(_ e: [StudyEvent]) -> [String: StudyGroup?] { Dictionary(uniqueKeysWithValues: e.map { ($0.trial, $0.group) }) }
        XCTAssertEqual(groups(got), groups(want))
        XCTAssertTrue(want.allSatisfy { $0.group?.members.count == 3 })
        for e in got {
            XCTAssertEqual(try RunDirectory(path: dir + "/trials/\(e.trial)/run").readMetrics().count, 3, "each epoch once")
        }
    }

    /// A group job's members, run in `root` (trials/<id>/ and groups/g/), up to epoch `until`.
    func groupJob(_ root: String, lrs: [Double], until: Int) throws -> (group: TrialJob, members: [TrialJob]) {
        let dataConfig = DataConfig(kind: "cifar10", path: data, validationFraction: 0.25, augment: false)
        var members: [TrialJob] = []
        for lr in lrs {
            let trial = TrialConfig(convLayers: 1, filters: 4, hidden: [8], lr: lr, batchSize: 16, epochs: 2)
            let folder = root + "/trials/" + trial.id
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var job = TrialJob(id: trial.id, trial: trial, data: dataConfig, device: "cpu", threads: 1, directory: folder,
                               donor: nil, reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false, cacheBudget: 0, attempt: 1)
            job.untilEpoch = until
            job.keepTestSet = true
            try SearchJSON.write(job, to: folder + "/job.json")
            members.append(job)
        }
        let folder = root + "/groups/g"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try SearchJSON.write(GroupSpec(id: "g", members: members.map(\.id), jobs: members.map { $0.directory + "/job.json" }),
                             to: folder + "/" + GroupSpec.fileName)
        let group = TrialJob(id: "g", trial: nil, data: dataConfig, device: "cpu", threads: 1, directory: folder, donor: nil,
                             reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false, cacheBudget: 0, attempt: 1)
        return (group, members)
    }

    /// Killed between two members' commits of one epoch: the group's next job first finishes the
    /// staged commit (`pending/epoch.json` marks it committed), so the member resumes at the epoch
    /// its mates are at, with the weights the group trained, not a retrained epoch.
    func testAnEpochCommittedForOneMemberIsFinishedForTheOthersOnResume() throws {
        let root = try makeTemporaryDirectory(self)
        let (group1, members) = try groupJob(root, lrs: [0.01, 0.001], until: 1)
        XCTAssertEqual(TrialRunner.run(group1).status, .finished)
        let b = members[1], bRun = b.runDirectory
        let saved = root + "/b-after-1"
        try FileManager.default.copyItem(atPath: bRun, toPath: saved)
        let (group2, _) = try groupJob(root, lrs: [0.01, 0.001], until: 2)
        XCTAssertEqual(TrialRunner.run(group2).status, .finished)
        for m in members { XCTAssertEqual(try RunDirectory(path: m.runDirectory).readMetrics().count, 2) }
        // Stage B's epoch 2 as the group does, then put B back at epoch 1: A committed, B not.
        let pending = root + "/groups/g/pending"
        try FileManager.default.createDirectory(atPath: pending, withIntermediateDirectories: true)
        let staged = try SafeTensors.read(from: bRun + "/epoch-0002.safetensors")
        try staged.write(to: pending + "/\(b.id).safetensors")
        let line = try RunDirectory(path: bRun).readMetrics()[1]
        try RunDirectory(path: pending).writeJSON(line, to: pending + "/\(b.id).json")
        let manifest = try RunDirectory(path: bRun).readJSON(RunManifest.self, from: bRun + "/manifest.json")
        try SearchJSON.write(GroupJob.PendingEpoch(epoch: 2, members: members.map(\.id), best: [false, manifest.best?.epoch == 2]),
                             to: pending + "/epoch.json")
        try FileManager.default.removeItem(atPath: bRun)
        try FileManager.default.copyItem(atPath: saved, toPath: bRun)
        try FileManager.default.removeItem(atPath: b.directory + "/outcome.json")
        XCTAssertEqual(try RunDirectory(path: bRun).readMetrics().count, 1)

        XCTAssertEqual(TrialRunner.run(group2).status, .finished)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pending), "the pending epoch is applied and removed")
        XCTAssertEqual(try RunDirectory(path: bRun).readMetrics(), [try RunDirectory(path: saved).readMetrics()[0], line])
        let final = try SafeTensors.read(from: bRun + "/last.safetensors")
        for t in staged.tensors { XCTAssertEqual(try final.floats(t.name), try staged.floats(t.name), t.name) }
        let outcome = try SearchJSON.read(TrialOutcome.self, from: b.directory + "/outcome.json")
        XCTAssertEqual(outcome.epochs, 2)
        XCTAssertEqual(outcome.validationLosses?.last ?? nil, line.validationLoss)
    }
}
