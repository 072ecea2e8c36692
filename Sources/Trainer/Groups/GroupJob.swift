import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The worker side of a group job (`GroupSpec`): the members' trials train as one `TrialGroup`,
/// epoch by epoch, each up to its own job's epoch (its budget, or the pruner's next rung).
///
/// Each member stays an ordinary trial: its `run/` is an ordinary run directory, opened and
/// resumed as a lone trial's (`TrainingRun.reopen`), its epochs counted by its own run
/// (`recordExternalStep`, `endExternalEpoch`) and committed through its own `RunRecorder`; its
/// `outcome.json` is the one a lone job would write (`TrialRunner.wholeOutcome`, `segmentOutcome`).
/// A member that diverges, or reaches its epoch, leaves (`TrialGroup.removing`) and the rest go on.
///
/// The members' commits of an epoch are all or none: each member's checkpoint and metrics line
/// are first written to `pending/` in the group's folder, then `pending/epoch.json` (the commit
/// point), then each member commits. A worker killed in between finishes those commits when the
/// group is formed again (`recover`), so the members resume at one epoch and, trained in the
/// same group again, end bit-identical to a group never stopped.
///
/// Members at different epochs (never, from the engine) train as separate groups one after
/// another, as do members beyond the memory budget (`GroupingRule.cap`); networks that cannot be
/// fused (`TrialGroup.plan`) train alone, one after another.
enum GroupJob {
    /// A member's open trial.
    final class Member {
        let job: TrialJob
        let recorder: RunRecorder
        let run: TrainingRun
        /// The epoch its job trains up to.
        let target: Int
        init(job: TrialJob, recorder: RunRecorder, run: TrainingRun, target: Int) {
            self.job = job
            self.recorder = recorder
            self.run = run
            self.target = target
        }
    }

    /// What `pending/epoch.json` says: the epoch the members in it commit and which of them is best.
    struct PendingEpoch: Codable {
        var epoch: Int
        var members: [String]
        var best: [Bool]
    }

    /// Never throws: the group's own outcome (failed only when the group as a whole could not
    /// train: then each member without an outcome of its own is failed with that error by the
    /// engine). Members' outcomes are in their folders.
    static func run(_ job: TrialJob) -> TrialOutcome {
        TrialRunner.recordOutcome(job, at: TrialRunner.outcomePath(job.directory)) { try train(job) }
    }

    static func train(_ job: TrialJob) throws -> TrialOutcome {
        let folder = job.directory
        let spec = try GroupSpec.read(from: folder + "/" + GroupSpec.fileName)
        let jobs = try spec.jobs.map { try TrialJob.read(from: $0) }
        guard let choice = DeviceChoice(parsing: job.device) else { throw SearchError("device '\(job.device)' is not cpu, cuda, cuda:N or auto") }
        // The members' precision (one search's trials share it): a backend of another precision
        // would be refused by each member's run.
        let backend = try WarmBackends.make(choice, threads: job.threads, strictFP32: false,
                                              batchSize: jobs.first?.train?.batchSize ?? jobs.first?.trial?.batchSize,
                                              precision: jobs.first?.runPrecision ?? job.runPrecision, notice: { _ in })
        var locks: [Int32] = []
        defer { for l in locks { close(l) } }
        let cpu = processCPUSeconds()
        // A member's outcome is written as it leaves (each with an equal share of the group's CPU
        // time so far), so a kill later in the job does not train it again.
        let emit = { (j: TrialJob, o: TrialOutcome) throws in
            var outcome = o
            outcome.cpuSeconds = (processCPUSeconds() - cpu) / Double(max(1, jobs.count))
            try SearchJSON.write(outcome, to: TrialRunner.outcomePath(j.directory))
        }
        var opened: [(job: TrialJob, recorder: RunRecorder, fresh: TrainConfig?)] = []
        defer { for o in opened { o.recorder.close() } }
        for j in jobs {
            let lock = open(j.directory + "/.trial.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if lock >= 0 { _ = flock(lock, LOCK_EX); locks.append(lock) }
            if stored(j) != nil { continue }   // it left the group before a kill: its outcome stands
            do {
                let directory = RunDirectory(path: j.runDirectory)
                let resuming = directory.exists(directory.configPath)
                let fresh: TrainConfig? = resuming ? nil : try j.train ?? j.trial.map { try TrialRunner.newTrial(j, $0).config }
                guard resuming || fresh != nil else { throw SearchError("\(j.directory)/job.json names neither a trial nor a training") }
                let recorder = try RunRecorder(directory, kind: .train, mode: resuming ? .resume : .new)
                if let fresh { try directory.writeJSON(fresh, to: directory.configPath) }
                opened.append((j, recorder, fresh))
            } catch {
                if InfrastructureFault.describe(error) != nil { throw error }
                try emit(j, .failed(j.id, "\(error)"))
            }
        }
        try recover(folder, opened.map { ($0.job.id, $0.recorder) })
        var members: [Member] = []
        for o in opened {
            do {
                // As the lone paths load it: a whole search trial keeps its test set, a segment as its job says.
                let testSet = o.job.train == nil && o.job.untilEpoch == nil ? true : o.job.keepTestSet == true
                let run = try TrainingRun.reopen(o.recorder, config: o.fresh, backend: backend, testSet: testSet)
                let target = min(o.job.untilEpoch ?? run.config.epochs, run.config.epochs)
                members.append(Member(job: o.job, recorder: o.recorder, run: run, target: target))
            } catch {
                if InfrastructureFault.describe(error) != nil { throw error }
                try emit(o.job, .failed(o.job.id, "\(error)"))
            }
        }
        // Members already at their epoch (killed before their outcome was written) just end.
        for m in members where m.run.epoch >= m.target { try emit(m.job, try finish(m)) }
        let training = members.filter { $0.run.epoch < $0.target }
        // One group per epoch the members are at (one, from the engine), within the memory cap.
        let byEpoch = Dictionary(grouping: training, by: { $0.run.epoch }).sorted { $0.key < $1.key }
        for (_, cohort) in byEpoch {
            let cap = GroupingRule.cap(memberBytes: GroupingRule.memberBytes(cohort[0].run.model, batch: cohort[0].run.config.batchSize))
            for start in stride(from: 0, to: cohort.count, by: cap) {
                let chunk = Array(cohort[start..<min(start + cap, cohort.count)])
                try trainTogether(chunk, backend: backend, folder: folder, emit: emit)
            }
        }
        return TrialOutcome(id: job.id, status: .finished, epochs: 0)
    }

    /// A member's stored outcome that answers its job (as `TrialRunner.run` honours one).
    static func stored(_ job: TrialJob) -> TrialOutcome? {
        let path = TrialRunner.outcomePath(job.directory)
        guard FileSystem.kind(of: path) == .file, let done = try? SearchJSON.read(TrialOutcome.self, from: path) else { return nil }
        guard done.fault == nil && (done.status == .failed || job.targetEpoch.map({ done.epochs >= $0 }) ?? true) else { return nil }
        return done
    }

    /// Trains members at one epoch as one group until each has left; `emit` gets each one's outcome.
    static func trainTogether(_ chunk: [Member], backend: Backend, folder: String,
                              emit: (TrialJob, TrialOutcome) throws -> Void) throws {
        var active = chunk
        let group: TrialGroup?
        do {
            group = chunk.count < 2 ? nil : try TrialGroup(members: chunk.map { GroupMember(id: $0.job.id, model: $0.run.model, optimizer: $0.run.optimizer) },
                                                           backend: backend, maxBatch: chunk[0].run.config.batchSize)
        } catch is GroupError {
            group = nil
        }
        guard var group else {
            // Not fusable (or alone): each trains as a lone trial would.
            for m in chunk { try emit(m.job, try trainAlone(m)) }
            return
        }
        do {
            while true {
                let lead = active[0].run, e = lead.epoch
                var states = active.map { $0.run.beginExternalEpoch() }
                // Every member has the same data, seed and batch size (`GroupingRule.key`): the
                // lead's batches and augmentation are each member's own.
                try lead.trainLoader.forEachBatch(epoch: e) { batch in
                    try Interruption.check()
                    let (x, y) = lead.stage(batch, augment: lead.config.data.augment)
                    let rates = active.map { $0.run.learningRate(epoch: e, batch: batch.index) }
                    let step = try group.trainStep(images: x, labels: y, learningRates: rates)
                    for i in active.indices {
                        try active[i].run.recordExternalStep(&states[i], losses: step.losses[i], logits: step.logits[i],
                                                              labels: y, learningRate: rates[i])
                    }
                }
                var leaving = Set<Int>()
                var ended: [Int] = []
                for i in active.indices {
                    group.extract(member: i)
                    do {
                        try active[i].run.endExternalEpoch(states[i])
                        ended.append(i)
                    } catch let d as DivergenceError {
                        try emit(active[i].job, .failed(active[i].job.id, "\(active[i].recorder.diverged(d))"))
                        leaving.insert(i)
                    }
                }
                try commit(ended.map { active[$0] }, folder: folder)
                for i in ended where active[i].run.epoch >= active[i].target {
                    try emit(active[i].job, try finish(active[i]))
                    leaving.insert(i)
                }
                if leaving.count == active.count { break }
                if !leaving.isEmpty {
                    group = try group.removing(leaving)
                    active = active.indices.filter { !leaving.contains($0) }.map { active[$0] }
                }
            }
        } catch let error as InterruptedError {
            for m in active { _ = m.recorder.interrupted(error) }
            throw error
        }
    }

    /// A member that cannot be fused: its epochs through the fit loop, as a lone job's.
    static func trainAlone(_ m: Member) throws -> TrialOutcome {
        do {
            try FitLoop(run: m.run, recorder: m.recorder).train(until: m.target)
        } catch let error as DivergenceError {
            return .failed(m.job.id, "\(error)")
        }
        return try finish(m)
    }

    /// Commits the epoch just trained of every member, all or none (see the type).
    static func commit(_ members: [Member], folder: String) throws {
        let lines = members.map { $0.run.history.last! }
        let files = try members.map { try $0.run.checkpoint() }
        let best = members.map { $0.run.bestEpoch == $0.run.epoch }
        if members.count > 1 {
            let pending = folder + "/pending"
            if FileSystem.kind(of: pending) != nil { try FileSystem.removeTree(pending) }
            try RunDirectory(path: pending).create()
            for (i, m) in members.enumerated() {
                try files[i].write(to: pending + "/\(m.job.id).safetensors")
                try RunDirectory(path: pending).writeJSON(lines[i], to: pending + "/\(m.job.id).json")
            }
            try SearchJSON.write(PendingEpoch(epoch: members[0].run.epoch, members: members.map(\.job.id), best: best),
                                 to: pending + "/epoch.json")
        }
        for (i, m) in members.enumerated() {
            try m.recorder.appendMetrics(lines[i])
            try m.recorder.commit(files[i], epoch: m.run.epoch, best: best[i], validationAccuracy: lines[i].validationAccuracy)
        }
        if members.count > 1 { try FileSystem.removeTree(folder + "/pending") }
    }

    /// Finishes the commits of an epoch a kill interrupted: members still one epoch behind the
    /// pending one commit it as staged; an epoch never marked committed is dropped.
    static func recover(_ folder: String, _ recorders: [(id: String, recorder: RunRecorder)]) throws {
        let pending = folder + "/pending"
        guard FileSystem.kind(of: pending) != nil else { return }
        if FileSystem.kind(of: pending + "/epoch.json") == .file {
            let marked = try SearchJSON.read(PendingEpoch.self, from: pending + "/epoch.json")
            for (id, recorder) in recorders {
                guard let k = marked.members.firstIndex(of: id), (recorder.manifest.last?.epoch ?? 0) == marked.epoch - 1 else { continue }
                let file = try SafeTensors.read(from: pending + "/\(id).safetensors")
                let line = try RunDirectory(path: pending).readJSON(EpochMetrics.self, from: pending + "/\(id).json")
                try recorder.appendMetrics(line)
                try recorder.commit(file, epoch: marked.epoch, best: marked.best[k], validationAccuracy: line.validationAccuracy)
            }
        }
        try FileSystem.removeTree(pending)
    }

    /// A member at its job's epoch: the summary when its run is complete, and its outcome.
    static func finish(_ m: Member) throws -> TrialOutcome {
        var summary: RunSummary?
        if m.run.isFinished {
            let directory = m.recorder.directory
            let best = m.recorder.manifest.best.map { (path: FileSystem.join(directory.path, $0.file), epoch: $0.epoch) }
            // As a lone whole trial (TrialRunner.train): the best checkpoint's test pass only.
            if m.job.train == nil && m.job.untilEpoch == nil { m.run.testsLastEpoch = false }
            let s = try m.run.summarize(seconds: 0, best: best, last: m.recorder.lastCheckpointPath)
            try directory.writeJSON(s, to: directory.summaryPath)
            try m.recorder.complete()
            summary = s
        }
        if m.job.trial != nil && m.job.untilEpoch == nil, let summary { return TrialRunner.wholeOutcome(m.job, run: m.run, summary: summary) }
        return TrialRunner.segmentOutcome(m.job, run: m.run, summary: summary)
    }
}
