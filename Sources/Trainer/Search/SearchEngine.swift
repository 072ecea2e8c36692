#if canImport(Glibc)
import Glibc
#endif

/// Everything that defines a search; written to `search.json` so `--resume DIR` needs nothing else.
public struct SearchSettings: Codable, Equatable, Sendable {
    public var space: SearchSpace
    public var strategy: SearchStrategy
    public var reuse: ReuseStrategy
    public var data: DataConfig
    public var device: String
    /// Cache frozen prefixes' outputs across epochs (when the data is not augmented).
    public var cache: Bool
    public var cacheBudget: Int
    /// Workers, threads and engine of the first session (nil in searches from before it was
    /// stored): what `--resume` uses unless told otherwise. Not part of what makes two
    /// searches the same search (`sameSearch`).
    public var execution: StudyExecution?

    public init(space: SearchSpace, strategy: SearchStrategy = .grid, reuse: ReuseStrategy, data: DataConfig,
                device: String = "cpu", cache: Bool = true, cacheBudget: Int = 1 << 30, execution: StudyExecution? = nil) {
        self.space = space
        self.strategy = strategy
        self.reuse = reuse
        self.data = data
        self.device = device
        self.cache = cache
        self.cacheBudget = cacheBudget
        self.execution = execution
    }

    /// The same search, however it is run.
    public func sameSearch(as other: SearchSettings) -> Bool {
        var a = self, b = other
        a.execution = nil
        b.execution = nil
        return a == b
    }

    /// The trials the strategy proposes up front, planned for reuse (dry runs and static samplers).
    public func plan() throws -> [PlannedTrial] {
        var sampler = try strategy.makeSampler(space: space)
        var configs: [TrialConfig] = []
        while !sampler.isExhausted {
            let more = sampler.propose(limit: .max, finished: [])
            if more.isEmpty { break }
            configs += more
        }
        return SearchPlan.make(configs, reuse: reuse)
    }
}

/// Counts for the live line.
public struct SearchProgress: Equatable, Sendable {
    public var done: Int
    public var failed: Int
    public var running: Int
    public var queued: Int
    public var elapsed: Double
    /// Seconds to go, from the mean wall time of the trials finished in this session.
    public var eta: Double?
}

/// Callbacks for the terminal; all optional.
public struct SearchObserver {
    public var started: (TrialJob) -> Void = { _ in }
    public var finished: (TrialRecord, SearchProgress) -> Void = { _, _ in }
    public var tick: (SearchProgress) -> Void = { _ in }
    /// Trials already in the journal when the search (re)starts.
    public var resumed: (Int) -> Void = { _ in }
    public init() {}
}

/// A search directory: `search.json`, `journal.jsonl`, `trials/<id>/` (per trial: `job.json`,
/// `outcome.json`, logs, and `run/`, its run directory), `prefixes/` (frozen prefixes by content), `summary.json`, `report.html`.
public struct SearchDirectory: Sendable {
    public let path: String
    public init(path: String) { self.path = path }
    public var settingsPath: String { path + "/search.json" }
    public var journalPath: String { path + "/journal.jsonl" }
    public var summaryPath: String { path + "/summary.json" }
    public var reportPath: String { path + "/report.html" }
    public var prefixes: PrefixStore { PrefixStore(directory: path + "/prefixes") }
    public func trialDirectory(_ id: String) -> String { path + "/trials/" + id }
    public var journal: SearchJournal { SearchJournal(path: journalPath) }
    /// One line per search session that ended (not killed): its wall seconds and trials run.
    public var sessionsPath: String { path + "/sessions.jsonl" }

    /// Wall seconds of the sessions recorded in `sessions.jsonl` (0 when it cannot be read:
    /// `load()` refuses a bad file first).
    public func sessionSeconds() -> Double {
        ((try? StudySession.read(sessionsPath)) ?? []).reduce(0) { $0 + $1.seconds }
    }

    /// The sessions of `sessions.jsonl`, each line checked.
    public func sessions() throws -> [StudySession] { try StudySession.read(sessionsPath) }

    public func readSettings() throws -> SearchSettings {
        guard FileSystem.kind(of: settingsPath) == .file else {
            throw SearchError("\(settingsPath) is missing: \(path) is not a search directory")
        }
        let settings = try SearchJSON.read(SearchSettings.self, from: settingsPath)
        var problems = StudyDataProblems()
        for p in settings.execution?.problems() ?? [] { problems.add(settingsPath, p) }
        try problems.throwIfAny()
        return settings
    }
}

/// Drives a search: plans trials, starts each when its donor is known and a worker is free,
/// journals every result, and skips what the journal already holds.
public final class SearchEngine {
    public let directory: SearchDirectory
    public let settings: SearchSettings
    public let executor: TrialExecutor
    public let threadsPerTrial: Int
    public let retryFailed: Bool
    public var observer = SearchObserver()
    /// The checkpoint a donor's prefix is copied from; default: its best (else last) checkpoint.
    /// Tests substitute a stand-in.
    public var prefixSource: ((String) throws -> String)?
    /// A sampler to use instead of the settings' strategy (adaptive samplers: TPE, ASHA, ...).
    public var sampler: (any TrialSampler)?

    public init(directory: SearchDirectory, settings: SearchSettings, executor: TrialExecutor,
                threadsPerTrial: Int, retryFailed: Bool = false) {
        self.directory = directory
        self.settings = settings
        self.executor = executor
        self.threadsPerTrial = threadsPerTrial
        self.retryFailed = retryFailed
    }

    /// Creates the directory and `search.json`, or checks that an existing one is the same search.
    public func prepare() throws {
        try makeDirectory(directory.path)
        try makeDirectory(directory.path + "/trials")
        try makeDirectory(directory.prefixes.directory)
        if FileSystem.kind(of: directory.settingsPath) == .file {
            let old = try directory.readSettings()
            guard old.sameSearch(as: settings) else {
                var (mine, theirs) = (settings, old)
                (mine.execution, theirs.execution) = (nil, nil)
                let field = SettingsDifference.first(mine, theirs).map { "search.json differs: \($0)" } ?? "search.json differs"
                throw SearchError("\(directory.path) holds another search (\(field)); use --resume \(directory.path) or another --output")
            }
        } else {
            try SearchJSON.write(settings, to: directory.settingsPath)
        }
    }

    /// Runs every trial not yet in the journal; returns the latest record of each trial.
    ///
    /// With `retryFailed`, a failed trial runs again and every trial that depends on it (its
    /// donor candidates include it, directly or through another such trial) waits for it; when
    /// it can start, it runs again only if the donor it would choose now differs from the one
    /// its journal line used or that donor ran again in this session, so the search ends where
    /// an uninterrupted one would.
    ///
    /// Stops early by throwing: `InterruptedError` on SIGINT/SIGTERM (`Interruption`), an
    /// `InfrastructureFault` when a worker reports one (full disk, read-only, permissions, a
    /// worker killed from outside). Both stop the workers, journal nothing for the trials they
    /// ran (each continues from its own checkpoint on `--resume`) and end `sessions.jsonl` with
    /// how the session ended.
    @discardableResult
    public func run() throws -> [TrialRecord] {
        try prepare()
        // One search process per directory: two would both run the same trials.
        let lock = try RunLock(directory: directory.path)
        defer { lock.release() }
        let journal = directory.journal
        _ = try directory.sessions()   // refuse a corrupt sessions.jsonl before any work
        var records = try journal.latest()
        var order = try journal.read().map(\.id)
        var sampler = try self.sampler ?? settings.strategy.makeSampler(space: settings.space)
        var plan: [PlannedTrial] = []
        var index: [String: Int] = [:]
        var pending: [String] = []
        var retrying = Set<String>()
        /// Journaled trials that depend on a retried one: rerun only if their donor changes.
        var conditional = Set<String>()
        var running = Set<String>()
        /// Trials (re)run in this session: a journaled dependent of one used an older version.
        var submitted = Set<String>()
        var alreadyDone = 0
        /// Asks the sampler for up to `limit` trials and queues those the journal does not hold.
        @discardableResult
        func extend(limit: Int) -> Int {
            let finished = order.compactMap { records[$0] }
            let proposed = sampler.propose(limit: limit, finished: finished)
            let more = SearchPlan.make(plan.map(\.config) + proposed, reuse: settings.reuse)
            var added = 0
            for p in more where index[p.id] == nil {
                index[p.id] = plan.count
                plan.append(p)
                added += 1
                if let r = records[p.id] {
                    if r.status == .failed && retryFailed {
                        retrying.insert(p.id)
                    } else if retryFailed && p.dependencies.contains(where: { retrying.contains($0) || conditional.contains($0) }) {
                        conditional.insert(p.id)
                    } else {
                        alreadyDone += 1
                        continue
                    }
                }
                pending.append(p.id)
            }
            return added
        }
        extend(limit: .max)
        observer.resumed(alreadyDone)
        let start = monotonicNow()
        var sessionWall: [Double] = []

        func progress() -> SearchProgress {
            let done = plan.filter { records[$0.id] != nil && !pending.contains($0.id) && !running.contains($0.id) }
            let failed = done.filter { records[$0.id]?.status == .failed }.count
            let workers = Double(max(1, running.count + executor.freeSlots))
            let eta = sessionWall.isEmpty ? nil
                : sessionWall.reduce(0, +) / Double(sessionWall.count) * Double(pending.count + running.count) / workers
            return SearchProgress(done: done.count, failed: failed, running: running.count, queued: pending.count,
                                  elapsed: monotonicNow() - start, eta: eta)
        }
        /// Stops the workers and ends the session with `end`; best effort (the disk may be full).
        func stop(_ end: StudySession.End, signal: Int32? = nil, reason: String? = nil) {
            executor.cancelAll()
            try? StudySession.append(StudySession(seconds: monotonicNow() - start, trials: sessionWall.count, end: end,
                                                  signal: signal, reason: reason), to: directory.sessionsPath)
        }
        let resume = "strata search --resume \(directory.path)"

        do {
            while true {
                if let signal = Interruption.requested {
                    stop(.interrupted, signal: signal)
                    throw InterruptedError(signal: signal, resume: resume,
                                           detail: "\(order.count) journal lines kept; \(running.count) running \(running.count == 1 ? "trial continues" : "trials continue") from its checkpoint on resume")
                }
                // Start every runnable trial, in plan order, while a worker is free.
                var i = 0
                while executor.freeSlots > 0 && i < pending.count {
                    let p = plan[index[pending[i]]!]
                    let ready = p.dependencies.allSatisfy { d in
                        index[d] == nil || (records[d] != nil && !pending.contains(d) && !running.contains(d))
                    }
                    guard ready else { i += 1; continue }
                    pending.remove(at: i)
                    if conditional.remove(p.id) != nil, let old = records[p.id] {
                        let donor = SearchPlan.chooseDonor(for: p, records: records)
                        if old.donor == donor && !(donor.map { submitted.contains($0) } ?? false) {
                            // The same donor, unchanged since: its journal line stands.
                            alreadyDone += 1
                            continue
                        }
                    }
                    let rerun = retrying.remove(p.id) != nil || records[p.id] != nil
                    let job = try schedule(p, records: records, retry: rerun)
                    try executor.submit(job)
                    submitted.insert(p.id)
                    running.insert(p.id)
                    observer.started(job)
                }
                // A free worker and nothing runnable: an adaptive sampler may have more now.
                if executor.freeSlots > 0 && !sampler.isExhausted && extend(limit: executor.freeSlots) > 0 { continue }
                if running.isEmpty {
                    guard pending.isEmpty else {
                        throw SearchError("no trial can start: \(pending.count) wait for donors outside the plan (a bug)")
                    }
                    break
                }
                let ended = try executor.poll(timeout: 0.25)
                // A signal during the poll: the outcomes of workers it stopped are no results.
                if Interruption.requested != nil { continue }
                if let fault = ended.compactMap({ $0.outcome.fault }).first {
                    stop(.stopped, reason: fault)
                    throw InfrastructureFault("\(fault); the search stopped (nothing was recorded for the trials running); "
                                              + "`\(resume)` continues once that is fixed")
                }
                for (reported, wall) in ended {
                    guard let p = index[reported.id].map({ plan[$0] }), running.remove(reported.id) != nil else { continue }
                    var outcome = reported
                    let problems = outcome.problems()
                    if !problems.isEmpty {
                        outcome = .failed(p.id, "the worker's outcome.json is not valid: " + problems.joined(separator: "; "))
                    }
                    let job = try? SearchJSON.read(TrialJob.self, from: directory.trialDirectory(p.id) + "/job.json")
                    let record = TrialRecord(
                        id: p.id, config: p.config, donor: job?.donor, reuseLayers: job?.reuseLayers ?? 0,
                        prefix: job?.prefixKey, status: outcome.status, error: outcome.error,
                        validationLoss: outcome.validationLoss, validationAccuracy: outcome.validationAccuracy,
                        testAccuracy: outcome.testAccuracy, seconds: outcome.seconds, wallSeconds: min(max(0, wall), StudyData.maxSeconds),
                        flopsExecuted: outcome.flopsExecuted, flopsSkipped: outcome.flopsSkipped,
                        epochs: outcome.epochs, attempt: job?.attempt ?? 1, cpuSeconds: outcome.cpuSeconds)
                    try journal.append(record)
                    directory.refreshReport(name: settings.reuse.rawValue)
                    records[p.id] = record
                    order.append(p.id)
                    sessionWall.append(wall)
                    observer.finished(record, progress())
                }
                observer.tick(progress())
            }
        } catch {
            throw InfrastructureFault.leaving("search", error: error, resume: resume,
                                              stop: { stop(.stopped, reason: $0) }, cancel: executor.cancelAll)
        }
        try StudySession.append(StudySession(seconds: monotonicNow() - start, trials: sessionWall.count, end: .complete),
                                to: directory.sessionsPath)
        return plan.compactMap { records[$0.id] }
    }

    /// The job of `trial`: from its `job.json` when it was scheduled before (an interrupted
    /// trial keeps the donor chosen then), else with its donor chosen now and the donor's prefix
    /// stored by content.
    func schedule(_ trial: PlannedTrial, records: [String: TrialRecord], retry: Bool) throws -> TrialJob {
        let runDirectory = directory.trialDirectory(trial.id)
        let jobPath = runDirectory + "/job.json"
        var attempt = 1
        if FileSystem.kind(of: jobPath) == .file {
            var old = try SearchJSON.read(TrialJob.self, from: jobPath)
            if !retry {
                // Paths as seen from here (the search may be resumed from another working directory).
                old.directory = runDirectory
                old.prefixPath = old.prefixKey.map { directory.prefixes.path(for: $0) }
                old.threads = threadsPerTrial
                try SearchJSON.write(old, to: jobPath)
                return old
            }
            // A failed trial runs again from scratch; its old directory is kept beside it.
            attempt = old.attempt + 1
            let kept = runDirectory + ".attempt\(old.attempt)"
            guard rename(runDirectory, kept) == 0 else { throw SearchError("cannot move \(runDirectory) to \(kept): errno \(errno)") }
        }
        try makeDirectory(runDirectory)
        var job = TrialJob(id: trial.id, trial: trial.config, data: settings.data, device: settings.device,
                           threads: threadsPerTrial, directory: runDirectory, donor: nil, reuseLayers: 0,
                           prefixPath: nil, prefixKey: nil, cache: settings.cache, cacheBudget: settings.cacheBudget,
                           attempt: attempt)
        if let donor = SearchPlan.chooseDonor(for: trial, records: records), let d = records[donor] {
            let key = PrefixStore.key(donor: d.config, layers: trial.reuseLayers, data: settings.data)
            let source = try prefixSource?(donor) ?? RunDirectory.resolveCheckpoint(directory.trialDirectory(donor) + "/run")
            job.donor = donor
            job.reuseLayers = trial.reuseLayers
            job.prefixKey = key
            job.prefixPath = try directory.prefixes.store(key: key, layers: trial.reuseLayers, from: source)
        }
        try SearchJSON.write(job, to: jobPath)
        return job
    }
}

func makeDirectory(_ path: String) throws {
    if FileSystem.kind(of: path) == .directory { return }
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/" + part
        if FileSystem.kind(of: prefix) == nil, mkdir(prefix, 0o755) != 0, errno != EEXIST {
            throw SearchError("cannot create \(prefix): \(String(cString: strerror(errno)))")
        }
    }
}

/// Creates a search folder (and its parents) before anything is written into it.
public func makeSearchFolder(_ path: String) throws { try makeDirectory(path) }
