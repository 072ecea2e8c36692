#if canImport(Glibc)
import Glibc
#endif

/// What the engine does with a trial after one of its jobs ended.
public enum StudyStep: Equatable, Sendable {
    /// Its state is final (finished, pruned, failed): nothing more to run.
    case settled
    /// The pruner let it go on: it goes before new trials, its next job continues its run.
    case promoted
}

/// What a study's trials are: search and hpo each answer these, the engine does the rest
/// (order, readiness, executors, interruption, faults, sessions).
public protocol StudyTrials: AnyObject {
    /// Up to `limit` new trials (ids, journaled as proposed where the study does so); empty when
    /// the sampler has nothing now.
    func propose(limit: Int) throws -> [String]
    /// Whether the sampler will ever propose again.
    var isExhausted: Bool { get }
    /// Trials this one waits for (its donor candidates): it starts once none of them is queued or running.
    func dependencies(of id: String) -> [String]
    /// The job of the trial's next segment (up to the pruner's next rung or its budget); nil when
    /// there is nothing to run (its journal line stands, or it failed before it could start and
    /// that is recorded).
    func job(for id: String) throws -> TrialJob?
    /// A job of the trial ended (its outcome already checked): record it, let the pruner decide.
    func ended(_ id: String, outcome: TrialOutcome, wallSeconds: Double) throws -> StudyStep
    /// Trials settled and of those failed, for the live line.
    func counts() -> (done: Int, failed: Int)
    /// What groups the trial with others (`TrialGrouping`); nil: it trains alone.
    func grouping(of id: String) -> TrialGrouping?
}

/// A trial's part in forming groups: trials of equal `key` may train as one `TrialGroup`
/// (`GroupingRule.key`: same layer shapes, batch size, data and seed); `device` decides whether
/// groups are formed at all (`GroupingRule.groups(device:mode:)`); `directory` is its folder.
public struct TrialGrouping: Equatable, Sendable {
    public var key: String
    public var device: String
    public var directory: String

    public init(key: String, device: String, directory: String) {
        self.key = key
        self.device = device
        self.directory = directory
    }
}

extension StudyTrials {
    public func grouping(of id: String) -> TrialGrouping? { nil }
}

/// Counts for the live line.
public struct StudyProgress: Equatable, Sendable {
    public var done: Int
    public var failed: Int
    public var running: Int
    public var queued: Int
    public var elapsed: Double
    /// Seconds to go, from the mean wall time of the jobs ended in this session.
    public var eta: Double?
}

/// Callbacks for the terminal; all optional.
public struct StudyObserver {
    public var started: (TrialJob) -> Void = { _ in }
    public var ended: (String, StudyProgress) -> Void = { _, _ in }
    public var tick: (StudyProgress) -> Void = { _ in }
    public init() {}
}

/// The one loop of `strata search` and `strata hpo`: takes a resumed or promoted trial, else a
/// queued one whose donors are done, else asks the sampler; submits its job while a worker is
/// free; hands each outcome to the study (which journals it and lets the pruner decide).
///
/// Stops early by throwing: `InterruptedError` on SIGINT/SIGTERM (`Interruption`), an
/// `InfrastructureFault` when a worker reports one (full disk, read-only, permissions, a worker
/// killed from outside). Both stop the workers, record nothing for the jobs they ran (each trial
/// continues from its own checkpoint on `--resume`) and end `sessions.jsonl` with how the
/// session ended.
public final class StudyEngine {
    public let executor: TrialExecutor
    /// `sessions.jsonl` of the study directory.
    public let sessionsPath: String
    /// "search" or "hpo", in messages.
    public let kind: String
    /// The command that continues the study (`strata search --resume DIR`).
    public let resumeCommand: String
    public var observer = StudyObserver()
    /// Add a `sessions.jsonl` line for a session that ran no job (search: yes; hpo: no).
    public var recordIdleSessions = true
    /// Said on interruption before the running count ("12 journal lines kept").
    public var interruptionPrefix: () -> String? = { nil }
    /// Where group jobs get their folders (`groups/<id>/`): beside `sessions.jsonl`.
    public var groupsDirectory: String { FileSystem.split(sessionsPath).directory + "/groups" }
    /// Groups formed in this session (each a job of two or more trials).
    public private(set) var groupsFormed: [StudyGroup] = []

    public init(executor: TrialExecutor, sessionsPath: String, kind: String, resumeCommand: String) {
        self.executor = executor
        self.sessionsPath = sessionsPath
        self.kind = kind
        self.resumeCommand = resumeCommand
    }

    /// Runs until every trial is settled and the sampler is exhausted. `first`: trials that go
    /// before everything (cut short by an interruption); `queued`: trials already proposed.
    public func run(_ trials: StudyTrials, first: [String] = [], queued: [String] = []) throws {
        _ = try StudySession.read(sessionsPath)   // refuse a corrupt sessions.jsonl before any work
        var front = first
        var pending = queued
        var running = Set<String>()
        // Group jobs running: the group's id -> its members' jobs.
        var groupJobs: [String: [TrialJob]] = [:]
        let groupMode = try GroupingRule.mode()
        var walls: [Double] = []
        let start = monotonicNow()

        func progress() -> StudyProgress {
            let (done, failed) = trials.counts()
            let workers = Double(max(1, running.count + executor.freeSlots))
            let eta = walls.isEmpty ? nil : walls.reduce(0, +) / Double(walls.count) * Double(front.count + pending.count + running.count) / workers
            return StudyProgress(done: done, failed: failed, running: running.count, queued: front.count + pending.count,
                                 elapsed: monotonicNow() - start, eta: eta)
        }
        /// Stops the workers and ends the session with `end`; best effort (the disk may be full).
        func stop(_ end: StudySession.End, signal: Int32? = nil, reason: String? = nil) {
            executor.cancelAll()
            try? StudySession.append(StudySession(seconds: monotonicNow() - start, trials: walls.count, end: end,
                                                  signal: signal, reason: reason), to: sessionsPath)
        }
        func ready(_ id: String) -> Bool {
            trials.dependencies(of: id).allSatisfy { d in !running.contains(d) && !front.contains(d) && !pending.contains(d) }
        }
        /// The next trial to start: the front (resumed, promoted) first, then queued ones in order.
        func take() -> String? {
            if let i = front.firstIndex(where: ready) { return front.remove(at: i) }
            if let i = pending.firstIndex(where: ready) { return pending.remove(at: i) }
            return nil
        }
        /// The trials that train with `id` (taken from the queues), in member order: the group its
        /// folder's marker names (a resumed study re-forms it), else ready trials of the same key,
        /// up to `GroupingRule.maxMembers`. Only trials runnable now: a free worker never waits
        /// for a group-mate.
        func mates(of id: String) -> (ids: [String], recorded: StudyGroup?) {
            guard groupMode != .off, let mine = trials.grouping(of: id), GroupingRule.groups(device: mine.device, mode: groupMode) else { return ([], nil) }
            let waiting = (front + pending).filter(ready)
            var chosen: [String]
            var recorded: StudyGroup?
            if let gid = GroupSpec.marker(in: mine.directory),
               let spec = try? GroupSpec.read(from: groupsDirectory + "/" + gid + "/" + GroupSpec.fileName), spec.members.contains(id) {
                chosen = spec.members.filter { m in
                    m != id && waiting.contains(m) && trials.grouping(of: m).map { GroupSpec.marker(in: $0.directory) == gid } == true
                }
                recorded = StudyGroup(id: spec.id, members: spec.members)
            } else {
                chosen = Array(waiting.filter { m in
                    m != id && trials.grouping(of: m).map { $0.key == mine.key && GroupSpec.marker(in: $0.directory) == nil } == true
                }.prefix(GroupingRule.maxMembers - 1))
            }
            front.removeAll { chosen.contains($0) }
            pending.removeAll { chosen.contains($0) }
            return (chosen, recorded)
        }
        /// Submits the jobs of `ids` as one group job (`GroupSpec`); a group of one as its plain job.
        /// `recorded`: the group a resumed study re-forms (its id and all the members it was formed with).
        func submitGroup(_ ids: [String], recorded: StudyGroup?) throws {
            let group = recorded ?? StudyGroup(id: "g-" + fnv1a64Hex(ids.joined(separator: ",")), members: ids)
            StudyGroup.current.withLock { for m in ids { $0[m] = group } }
            var jobs: [TrialJob] = []
            for m in ids {
                if let job = try trials.job(for: m) { jobs.append(job) } else { StudyGroup.current.withLock { _ = $0.removeValue(forKey: m) } }
            }
            guard jobs.count > 1 || (recorded != nil && !jobs.isEmpty) else {
                for job in jobs {
                    StudyGroup.current.withLock { _ = $0.removeValue(forKey: job.id) }
                    try executor.submit(job)
                    running.insert(job.id)
                    observer.started(job)
                }
                return
            }
            let folder = groupsDirectory + "/" + group.id
            try RunDirectory(path: folder).create()
            try SearchJSON.write(GroupSpec(id: group.id, members: group.members, jobs: jobs.map { $0.directory + "/job.json" }),
                                 to: folder + "/" + GroupSpec.fileName)
            for job in jobs { try GroupSpec.writeMarker(group.id, in: job.directory) }
            let first = jobs[0]
            let job = TrialJob(id: group.id, trial: nil, data: first.data, device: first.device, threads: first.threads,
                               directory: folder, donor: nil, reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false,
                               cacheBudget: 0, attempt: 1)
            try SearchJSON.write(job, to: folder + "/job.json")
            // A stale outcome of this group's earlier job (a pruned search re-forms one per rung) is no result.
            unlink(TrialRunner.outcomePath(folder))
            try executor.submit(job)
            groupJobs[group.id] = jobs
            groupsFormed.append(group)
            for j in jobs {
                running.insert(j.id)
                observer.started(j)
            }
        }
        /// A member's outcome from its folder, once its group's job ended; the group's failure
        /// (or a missing outcome) is the member's when it has none of its own.
        func memberOutcome(_ job: TrialJob, group: TrialOutcome) -> TrialOutcome {
            if let own = GroupJob.stored(job) { return own }
            if group.status == .failed { return .failed(job.id, group.error ?? "its group's worker failed") }
            return .failed(job.id, "its group's worker ended without this trial's outcome.json")
        }

        do {
            while true {
                if let signal = Interruption.requested {
                    stop(.interrupted, signal: signal)
                    let continuing = "\(running.count) running \(running.count == 1 ? "trial continues" : "trials continue") from its checkpoint on resume"
                    throw InterruptedError(signal: signal, resume: resumeCommand,
                                           detail: interruptionPrefix().map { $0 + "; " + continuing } ?? continuing)
                }
                while executor.freeSlots > 0 {
                    guard let id = take() else {
                        // A free worker and nothing runnable: the sampler may have more now.
                        guard !trials.isExhausted else { break }
                        let more = try trials.propose(limit: executor.freeSlots)
                        if more.isEmpty { break }
                        pending += more
                        continue
                    }
                    let group = mates(of: id)
                    if !group.ids.isEmpty || group.recorded != nil {
                        // A re-formed group keeps its member order: each member's slices, as before the kill.
                        let ids = [id] + group.ids
                        try submitGroup(group.recorded.map { r in r.members.filter(ids.contains) } ?? ids, recorded: group.recorded)
                        continue
                    }
                    guard let job = try trials.job(for: id) else { continue }
                    // An executor that cannot take a job is broken for every trial: stop (resume continues).
                    try executor.submit(job)
                    running.insert(id)
                    observer.started(job)
                }
                if running.isEmpty {
                    guard front.isEmpty && pending.isEmpty else {
                        throw SearchError("no trial can start: \(front.count + pending.count) wait for donors outside the study (a bug)")
                    }
                    break
                }
                let ended = try executor.poll(timeout: 0.25)
                // A signal during the poll: the outcomes of workers it stopped are no results.
                if Interruption.requested != nil { continue }
                if let fault = ended.compactMap({ $0.outcome.fault }).first {
                    stop(.stopped, reason: fault)
                    throw InfrastructureFault("\(fault); the \(kind) stopped (nothing was recorded for the trials running); "
                                              + "`\(resumeCommand)` continues once that is fixed")
                }
                for (reported, wall) in ended {
                    if let jobs = groupJobs.removeValue(forKey: reported.id) {
                        for job in jobs {
                            running.remove(job.id)
                            var outcome = memberOutcome(job, group: reported)
                            let problems = outcome.problems()
                            if !problems.isEmpty {
                                outcome = .failed(job.id, "the worker's outcome.json is not valid: " + problems.joined(separator: "; "))
                            }
                            // The marker goes first: a kill before the journal line runs the member alone
                            // on resume, where its stored outcome answers at once.
                            GroupSpec.removeMarker(in: job.directory)
                            walls.append(wall)
                            let step = try trials.ended(job.id, outcome: outcome, wallSeconds: wall)
                            StudyGroup.current.withLock { _ = $0.removeValue(forKey: job.id) }
                            if step == .promoted { front.append(job.id) }
                            observer.ended(job.id, progress())
                        }
                        continue
                    }
                    guard running.remove(reported.id) != nil else { continue }
                    var outcome = reported
                    let problems = outcome.problems()
                    if !problems.isEmpty {
                        outcome = .failed(reported.id, "the worker's outcome.json is not valid: " + problems.joined(separator: "; "))
                    }
                    walls.append(wall)
                    if try trials.ended(reported.id, outcome: outcome, wallSeconds: wall) == .promoted {
                        front.append(reported.id)
                    }
                    observer.ended(reported.id, progress())
                }
                observer.tick(progress())
            }
        } catch {
            throw InfrastructureFault.leaving(kind, error: error, resume: resumeCommand,
                                              stop: { stop(.stopped, reason: $0) }, cancel: executor.cancelAll)
        }
        if recordIdleSessions || !walls.isEmpty {
            try StudySession.append(StudySession(seconds: monotonicNow() - start, trials: walls.count, end: .complete),
                                    to: sessionsPath)
        }
    }

    /// Runs one job alone to its end (the hpo's final training), with the same interruption and
    /// fault handling as the loop; `detail` says where the job continues from on resume.
    public func runAlone(_ job: TrialJob, detail: String) throws -> (outcome: TrialOutcome, wallSeconds: Double) {
        try executor.submit(job)
        var ended: (outcome: TrialOutcome, wallSeconds: Double)?
        while ended == nil {
            if let signal = Interruption.requested {
                executor.cancelAll()
                throw InterruptedError(signal: signal, resume: resumeCommand, detail: detail)
            }
            ended = try executor.poll(timeout: 0.25).first { $0.outcome.id == job.id }
        }
        if let signal = Interruption.requested {
            // The job may have ended by the signal: no result; the resume continues it.
            throw InterruptedError(signal: signal, resume: resumeCommand, detail: detail)
        }
        return ended!
    }
}
