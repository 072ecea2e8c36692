#if canImport(Glibc)
import Glibc
#endif

/// What `strata search` does once its flags are parsed: a new search (one per reuse strategy,
/// side by side when several), a resumed one, or a comparison of finished ones. The terminal
/// hears lines through `say` and attaches its live display with `observe`.
public struct SearchWorkflow {
    public var execution: ExecutionRequest
    public var makeExecutor: ExecutorFactory
    /// With --resume: run failed trials again.
    public var retryFailed = false
    /// Disk for each search's `prefixes/`, in bytes (`SearchEngine.prefixBudget`).
    public var prefixBudget = PrefixStore.defaultBudget
    public var say: (String) -> Void = { _ in }
    /// Attaches the terminal's display to a search before it runs.
    public var observe: (SearchEngine) -> Void = { _ in }
    /// A search's loop ended (the display clears its live line).
    public var loopEnded: () -> Void = {}

    public init(execution: ExecutionRequest, makeExecutor: @escaping ExecutorFactory) {
        self.execution = execution
        self.makeExecutor = makeExecutor
    }

    /// A new search of `settings` for each of `reuses`: in `output`, or in `output/<reuse>` with a
    /// side-by-side report in `output` when there are several. Nothing of a user's is written
    /// over: a folder that is not this kind of search is refused unless `overwrite`.
    public func start(_ settings: SearchSettings, reuses: [ReuseStrategy], output: String, overwrite: Bool) throws {
        // One search's folder by the study's one rule (`StudyDirectory.prepare`); several
        // strategies are arms side by side (`StudyArms`): all folders before anything runs.
        let arms = Self.arms(output, reuses.map(\.rawValue))
        let notices = reuses.count > 1 ? try arms.prepare(overwrite: overwrite)
                                       : [try SearchDirectory(path: output).study.prepare(overwrite: overwrite)].compactMap { $0 }
        for notice in notices { say(notice) }
        for r in reuses {
            var s = settings
            s.reuse = r
            try execute(s, in: SearchDirectory(path: reuses.count > 1 ? arms.directory(r.rawValue).path : output))
        }
        if reuses.count > 1 { try writeCompare(reuses.map { arms.directory($0.rawValue).path }, to: output) }
    }

    /// `--reuse a,b,c`: an arm per strategy, in `root/<strategy>`.
    static func arms(_ root: String, _ names: [String]) -> StudyArms {
        StudyArms(root: root, arms: names, study: .search, comparison: .searchComparison)
    }

    /// Continues the search in `path` (each strategy of a side-by-side search).
    public func resume(_ path: String) throws {
        let found = StudyArms.found(in: path, candidates: ReuseStrategy.allCases.map(\.rawValue), study: .search)
        if !found.isEmpty {
            let parts = found.map { Self.arms(path, found).directory($0).path }
            for part in parts {
                let dir = SearchDirectory(path: part)
                try execute(try dir.readSettings(), in: dir)
            }
            return try writeCompare(parts, to: path)
        }
        let dir = SearchDirectory(path: path)
        try execute(try dir.readSettings(), in: dir)
    }

    /// Runs the search of `stored` in `dir` (new or resumed), then writes its summary and report.
    @discardableResult
    public func execute(_ stored: SearchSettings, in dir: SearchDirectory) throws -> SearchSummary {
        // Workers, threads and engine as the search first ran (search.json) unless given now.
        let was = stored.execution
        let now = try execution.withSharing(for: stored).resolve(was: was)
        if let was, let notice = was.overrideNotice(now) { say(notice) }
        if let sharing = now.sharing { say(sharing.description) }
        var settings = stored
        settings.execution = was ?? now
        let executor = try makeExecutor(now, dir.path + "/ray.log")
        defer { (executor as? RayExecutor)?.shutdown() }
        let engine = SearchEngine(directory: dir, settings: settings, executor: executor,
                                  threadsPerTrial: now.threadsPerTrial, retryFailed: retryFailed)
        engine.prefixBudget = prefixBudget
        observe(engine)
        say("search \(dir.path): \(settings.space.name), reuse \(settings.reuse.rawValue), \(plural(now.workers, "worker")) x \(plural(now.threadsPerTrial, "thread"))")
        try engine.run()
        loopEnded()
        let summary = try dir.writeSummaryAndReport(name: settings.reuse.rawValue, prefixBudget: prefixBudget)
        say("\(summary.finished) finished, \(summary.failed) failed; training \(formatFixed(summary.trainingSeconds, digits: 1))s "
            + "(2-3 conv \(formatFixed(summary.multiLayerSeconds, digits: 1))s), \(formatCount(summary.flopsExecuted))FLOP executed, "
            + "\(formatCount(summary.flopsSkipped))FLOP skipped")
        if let b = summary.best {
            say("best \(b.id): val loss \(formatFixed(b.validationLoss, digits: 4)), \(b.config.shortDescription)")
        }
        if let store = summary.prefixStore, store.evictedFiles > 0 {
            say("prefixes/: \(formatCount(Double(store.keptBytes)) + "B") kept within \(formatCount(Double(prefixBudget)) + "B"); "
                + "\(plural(store.evictedFiles, "file")) (\(formatCount(Double(store.evictedBytes)) + "B")) removed by the budget")
        }
        say("wrote \(dir.summaryPath), \(dir.reportPath)")
        return summary
    }

    /// `--compare DIRS --output OUT`: the searches side by side in `OUT/report.html`. The report
    /// may replace a comparison's own report.html, never a user's file.
    public func compare(_ dirs: [String], output: String, overwrite: Bool) throws {
        let policy = OutputPolicy(overwrite: overwrite)
        let folder = try policy.prepareFolder(output, for: .searchComparison)
        if !folder.sameStudy, let notice = try policy.prepareFile(output + "/report.html") { say(notice) }
        try writeCompare(dirs, to: output)
    }

    func writeCompare(_ dirs: [String], to output: String) throws {
        let searches = try dirs.map { path -> (summary: SearchSummary, records: [StudyEvent]) in
            let dir = SearchDirectory(path: path)
            let (settings, records) = try dir.load()
            let seconds = dir.sessionSeconds()
            return (SearchSummary(name: path.split(separator: "/").last.map(String.init) ?? path, reuse: settings.reuse,
                                  records: records, searchSeconds: seconds > 0 ? seconds : nil), records)
        }
        let html = SearchReport.html(searches: searches, title: "strata search: " + dirs.joined(separator: " vs "))
        try SearchReport.write(html, to: output + "/report.html")
        say("wrote \(output)/report.html")
        // The arms' table (the same columns as `strata hpo --compare-full`), then what only a search has.
        let rows = searches.map { s, _ in
            StudyArms.Row(arm: s.name, seconds: s.searchSeconds, cpuSeconds: s.cpuSeconds, trials: s.trials, pruned: s.pruned ?? 0,
                          failed: s.failed, best: s.best.map { "val_loss " + formatFixed($0.validationLoss, digits: 4) } ?? "-",
                          testAccuracy: s.best?.testAccuracy)
        }
        for line in StudyArms.table(rows) { say(line) }
        for (s, _) in searches {
            say("\(s.name): training \(formatFixed(s.trainingSeconds, digits: 1))s, 2-3 conv \(formatFixed(s.multiLayerSeconds, digits: 1))s, "
                + "executed \(formatCount(s.flopsExecuted))FLOP, skipped \(formatCount(s.flopsSkipped))FLOP")
        }
    }
}
