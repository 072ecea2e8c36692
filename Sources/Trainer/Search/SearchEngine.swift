import GPUTensor
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
    /// Stops weak trials at rungs (nil or none: every trial trains its epochs; nil in searches
    /// from before pruners). With a pruner, trials train in segments up to each rung.
    public var pruner: StudyPrunerKind?
    /// `--precision` of every trial (nil in searches from before it: fp32).
    public var precision: Precision?

    public init(space: SearchSpace, strategy: SearchStrategy = .grid, reuse: ReuseStrategy, data: DataConfig,
                device: String = "cpu", cache: Bool = true, cacheBudget: Int = 1 << 30, execution: StudyExecution? = nil,
                pruner: StudyPrunerKind? = nil, precision: Precision = .fp32) {
        self.pruner = pruner
        self.precision = precision
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
        (a.precision, b.precision) = (a.precision ?? .fp32, b.precision ?? .fp32)
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
public typealias SearchProgress = StudyProgress

/// Callbacks for the terminal; all optional.
public struct SearchObserver {
    public var started: (TrialJob) -> Void = { _ in }
    public var finished: (StudyEvent, SearchProgress) -> Void = { _, _ in }
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
    /// The study folder (folder policy, lock, settings, journal, sessions), as an hpo's.
    public var study: StudyDirectory { StudyDirectory(path: path, study: .search) }
    static let settingsFile = StudyDirectory.SettingsFile<SearchSettings>(
        read: { try SearchJSON.read(SearchSettings.self, from: $0) }, write: { try SearchJSON.write($0, to: $1) })
    public var settingsPath: String { study.settingsPath }
    public var journalPath: String { study.journalPath }
    public var summaryPath: String { path + "/summary.json" }
    public var reportPath: String { path + "/report.html" }
    public var prefixes: PrefixStore { PrefixStore(directory: path + "/prefixes") }
    public func trialDirectory(_ id: String) -> String { study.trialDirectory(id) }
    public var journal: SearchJournal { SearchJournal(path: journalPath) }
    /// One line per search session that ended (not killed): its wall seconds and trials run.
    public var sessionsPath: String { study.sessionsPath }

    /// Wall seconds of the sessions recorded in `sessions.jsonl` (0 when it cannot be read:
    /// `load()` refuses a bad file first).
    public func sessionSeconds() -> Double {
        ((try? StudySession.read(sessionsPath)) ?? []).reduce(0) { $0 + $1.seconds }
    }

    /// The sessions of `sessions.jsonl`, each line checked.
    public func sessions() throws -> [StudySession] { try StudySession.read(sessionsPath) }

    public func readSettings() throws -> SearchSettings {
        try study.readSettings(file: Self.settingsFile) { $0.execution?.problems() ?? [] }
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
    /// Sampling to use instead of the settings' strategy (tests: a sampler of their own).
    public var sampler: SearchSampling?
    /// Disk for `prefixes/` (frozen prefixes and cached activations); beyond it the least
    /// recently used files that no running or queued trial needs are removed after each result.
    public var prefixBudget = PrefixStore.defaultBudget

    public init(directory: SearchDirectory, settings: SearchSettings, executor: TrialExecutor,
                threadsPerTrial: Int, retryFailed: Bool = false) {
        self.directory = directory
        self.settings = settings
        self.executor = executor
        self.threadsPerTrial = threadsPerTrial
        self.retryFailed = retryFailed
    }

    /// Creates the directory and `search.json`, or checks that an existing one is the same search.
    func open() throws -> RunLock {
        let (_, lock) = try directory.study.openNew(settings, file: SearchDirectory.settingsFile) { old in
            guard old.sameSearch(as: settings) else {
                var (mine, theirs) = (settings, old)
                (mine.execution, theirs.execution) = (nil, nil)
                (mine.precision, theirs.precision) = (mine.precision ?? .fp32, theirs.precision ?? .fp32)
                let field = SettingsDifference.first(mine, theirs).map { "search.json differs: \($0)" } ?? "search.json differs"
                throw SearchError("\(directory.path) holds another search (\(field)); use --resume \(directory.path) or another --output")
            }
            return settings
        }
        try makeDirectory(directory.study.trialsPath)
        try makeDirectory(directory.prefixes.directory)
        return lock
    }

    /// Runs every trial not yet in the journal on the study engine; returns the latest record of each trial.
    ///
    /// With `retryFailed`, a failed trial runs again and every trial that depends on it (its
    /// donor candidates include it, directly or through another such trial) waits for it; when
    /// it can start, it runs again only if the donor it would choose now differs from the one
    /// its journal line used or that donor ran again in this session, so the search ends where
    /// an uninterrupted one would.
    ///
    /// Stops early by throwing (`StudyEngine.run`): interrupted or on an infrastructure fault,
    /// journaling nothing for the trials that were running.
    @discardableResult
    public func run() throws -> [StudyEvent] {
        // One search process per directory: two would both run the same trials.
        let lock = try open()
        defer { lock.release() }
        let trials = try SearchTrials(self)
        let engine = StudyEngine(executor: executor, sessionsPath: directory.sessionsPath, kind: "search",
                                 resumeCommand: "strata search --resume \(directory.path)")
        engine.interruptionPrefix = { "\(trials.order.count) journal lines kept" }
        engine.observer.started = observer.started
        engine.observer.tick = observer.tick
        engine.observer.ended = { [observer] id, progress in
            if let r = trials.records[id] { observer.finished(r, progress) }
        }
        var queued = try trials.propose(limit: .max)
        // Trials cut short (in a job, or at a rung) continue first, in journal order.
        let first = trials.continuing
        queued.removeAll { first.contains($0) }
        observer.resumed(trials.settled.count)
        try engine.run(trials, first: first, queued: queued)
        return trials.plan.compactMap { trials.records[$0.id] }
    }

    /// The job of `trial`: from its `job.json` when it was scheduled before (an interrupted
    /// trial keeps the donor chosen then), else with its donor chosen now and the donor's prefix
    /// stored by content.
    func schedule(_ trial: PlannedTrial, records: [String: StudyEvent], retry: Bool) throws -> TrialJob {
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
            attempt = (old.attempt ?? 1) + 1
            let kept = runDirectory + ".attempt\(old.attempt ?? 1)"
            guard rename(runDirectory, kept) == 0 else { throw SearchError("cannot move \(runDirectory) to \(kept): errno \(errno)") }
        }
        try makeDirectory(runDirectory)
        var job = TrialJob(id: trial.id, trial: trial.config, data: settings.data, device: settings.device,
                           threads: threadsPerTrial, directory: runDirectory, donor: nil, reuseLayers: 0,
                           prefixPath: nil, prefixKey: nil, cache: settings.cache, cacheBudget: settings.cacheBudget,
                           attempt: attempt)
        if let donor = SearchPlan.chooseDonor(for: trial, records: records), let d = records[donor]?.config {
            let key = PrefixStore.key(donor: d, layers: trial.reuseLayers, data: settings.data)
            let source = try prefixSource?(donor) ?? RunDirectory.resolveCheckpoint(directory.trialDirectory(donor) + "/run")
            job.donor = donor
            job.reuseLayers = trial.reuseLayers
            job.prefixKey = key
            job.prefixPath = try directory.prefixes.store(key: key, layers: trial.reuseLayers, from: source)
        }
        job.precision = settings.precision
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
