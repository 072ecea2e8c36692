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

    public init(space: SearchSpace, strategy: SearchStrategy = .grid, reuse: ReuseStrategy, data: DataConfig,
                device: String = "cpu", cache: Bool = true, cacheBudget: Int = 1 << 30) {
        self.space = space
        self.strategy = strategy
        self.reuse = reuse
        self.data = data
        self.device = device
        self.cache = cache
        self.cacheBudget = cacheBudget
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

/// A line of `sessions.jsonl`.
struct SearchSession: Codable {
    var seconds: Double
    var trials: Int
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

    /// Wall seconds of the sessions recorded in `sessions.jsonl`.
    public func sessionSeconds() -> Double {
        guard let bytes = try? FileSystem.readFile(sessionsPath) else { return 0 }
        return bytes.split(separator: 0x0A).compactMap { try? SearchJSON.decode(SearchSession.self, from: Array($0), file: sessionsPath) }
            .reduce(0) { $0 + $1.seconds }
    }

    public func readSettings() throws -> SearchSettings {
        guard FileSystem.kind(of: settingsPath) == .file else {
            throw SearchError("\(settingsPath) is missing: \(path) is not a search directory")
        }
        return try SearchJSON.read(SearchSettings.self, from: settingsPath)
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
            guard old == settings else {
                throw SearchError("\(directory.path) holds another search (search.json differs); use --resume \(directory.path) or another --output")
            }
        } else {
            try SearchJSON.write(settings, to: directory.settingsPath)
        }
    }

    /// Runs every trial not yet in the journal; returns the latest record of each trial.
    @discardableResult
    public func run() throws -> [TrialRecord] {
        try prepare()
        // One search process per directory: two would both run the same trials.
        let lock = open(directory.path + "/.search.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw SearchError("cannot open \(directory.path)/.search.lock: errno \(errno)") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw SearchError("another strata search is running in \(directory.path)")
        }
        let journal = directory.journal
        var records = try journal.latest()
        var order = try journal.read().map(\.id)
        var sampler = try self.sampler ?? settings.strategy.makeSampler(space: settings.space)
        var plan: [PlannedTrial] = []
        var index: [String: Int] = [:]
        var pending: [String] = []
        var retrying = Set<String>()
        var running = Set<String>()
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
                    guard r.status == .failed && retryFailed else { alreadyDone += 1; continue }
                    retrying.insert(p.id)
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

        while true {
            // Start every runnable trial, in plan order, while a worker is free.
            var i = 0
            while executor.freeSlots > 0 && i < pending.count {
                let p = plan[index[pending[i]]!]
                let ready = p.dependencies.allSatisfy { d in
                    index[d] == nil || (records[d] != nil && !pending.contains(d) && !running.contains(d))
                }
                guard ready else { i += 1; continue }
                pending.remove(at: i)
                let job = try schedule(p, records: records, retry: retrying.remove(p.id) != nil)
                try executor.submit(job)
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
            for (outcome, wall) in try executor.poll(timeout: 0.25) {
                guard let p = index[outcome.id].map({ plan[$0] }), running.remove(outcome.id) != nil else { continue }
                let job = try? SearchJSON.read(TrialJob.self, from: directory.trialDirectory(p.id) + "/job.json")
                let record = TrialRecord(
                    id: p.id, config: p.config, donor: job?.donor, reuseLayers: job?.reuseLayers ?? 0,
                    prefix: job?.prefixKey, status: outcome.status, error: outcome.error,
                    validationLoss: outcome.validationLoss, validationAccuracy: outcome.validationAccuracy,
                    testAccuracy: outcome.testAccuracy, seconds: outcome.seconds, wallSeconds: wall,
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
        try SearchJournal.appendLine(SearchJSON.canonical(SearchSession(seconds: monotonicNow() - start, trials: sessionWall.count)),
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
