import GPUTensor

/// The proxy of `--proxy synflow[:p=..,m=..,lr=..,tied=..]`, parsed.
public struct HPOProxy: Sendable {
    public var text: String
    public var percentile: Double
    public var minRatio: Double
    public var transfer: LearningRateTransfer
    public var tied: TiedChannels

    public init(text: String, percentile: Double, minRatio: Double, transfer: LearningRateTransfer, tied: TiedChannels) {
        self.text = text
        self.percentile = percentile
        self.minRatio = minRatio
        self.transfer = transfer
        self.tied = tied
    }
}

/// What `strata hpo` does once its flags are parsed: a new search (on the model, on its pruned
/// proxy, or both side by side with `--compare-full`), its dry-run plan, or a resumed one. The
/// terminal hears lines through `say`.
public struct HPOWorkflow {
    public var execution: ExecutionRequest
    public var makeExecutor: ExecutorFactory
    /// The search process's backend (the proxy's pruning; the final of an old directory trained here).
    public var backend: Backend
    public var say: (String) -> Void = { _ in }

    public init(execution: ExecutionRequest, makeExecutor: @escaping ExecutorFactory, backend: Backend) {
        self.execution = execution
        self.makeExecutor = makeExecutor
        self.backend = backend
    }

    /// A new search of `config` (its `trial` the full model: the proxy replaces it here) in
    /// `output`; with `compareFull`, the proxy's in `output/proxy`, the full model's in
    /// `output/full`, and the comparison in `output`. `dryRun`: the plans, nothing run.
    public func start(_ config: HPOConfig, data: RunData, proxy: HPOProxy?, compareFull: Bool, output: String,
                      overwrite: Bool, dryRun: Bool) throws {
        // Nothing of a user's is written over; an hpo already there is continued with --resume. One
        // search's folder follows the study's one rule (`StudyDirectory.prepare`; `HPORun` refuses
        // an hpo already there); with --compare-full the proxy's and the full model's searches are
        // arms side by side (`StudyArms`).
        let arms = Self.arms(output)
        if !dryRun {
            let notices = compareFull
                ? try arms.prepare(overwrite: overwrite, existing: "already holds an hpo search: pass --resume \(output) to continue it, "
                                   + "or --overwrite to replace it")
                : [try StudyDirectory(path: output, study: .hpo).prepare(overwrite: overwrite)].compactMap { $0 }
            for notice in notices { say(notice) }
        }
        func plan(_ config: HPOConfig, _ directory: String) throws {
            for line in try HPOPlan.lines(config, directory: directory) { say(line) }
        }
        guard let proxy else {
            if dryRun { return try plan(config, output) }
            _ = try runOne(HPORun(config: config, directory: RunDirectory(path: output), backend: backend, data: data))
            return
        }
        let proxyConfig = try self.proxyConfig(config, proxy)
        if dryRun {
            try plan(proxyConfig, compareFull ? arms.directory("proxy").path : output)
            if compareFull { try plan(config, arms.directory("full").path) }
            return
        }
        guard compareFull else {
            _ = try runOne(HPORun(config: proxyConfig, directory: RunDirectory(path: output), backend: backend, data: data))
            return
        }
        // Both arms' settings are written before either runs: a resume finds both.
        let runs = try [("proxy", proxyConfig), ("full", config)].map { arm, c in
            try HPORun(config: c, directory: RunDirectory(path: arms.directory(arm).path), backend: backend, data: data)
        }
        let results = try runs.map { try runOne($0) }
        try compare(proxy: results[0], full: results[1], directory: output)
    }

    /// `--compare-full`: the proxy's search and the full model's, arms side by side in `root/proxy`, `root/full`.
    static func arms(_ root: String) -> StudyArms {
        StudyArms(root: root, arms: ["proxy", "full"], study: .hpo, comparison: .hpoComparison)
    }

    /// `config` with its trials on the Synflow-pruned proxy of its model (learning rates transferred).
    func proxyConfig(_ config: HPOConfig, _ proxy: HPOProxy) throws -> HPOConfig {
        let base = config.trial
        let report = try Pruning.prune(base.model, seed: base.seed, percentile: proxy.percentile, minRatio: proxy.minRatio,
                                       tied: proxy.tied, backend: backend)
        var trial = base
        trial.model = report.spec
        trial.modelName = base.modelName + "-proxy"
        let scales = try proxy.transfer.scales(full: base.model, proxy: report.spec, optimizer: base.optimizer.kind)
        trial.optimizer.learningRateScales = scales.isEmpty ? nil : scales
        say("proxy: \(report.paramsBefore) -> \(report.paramsAfter) parameters, \(formatCount(report.flopsBefore)) -> "
            + "\(formatCount(report.flopsAfter))FLOP forward per image (synflow, p=\(proxy.percentile), m=\(proxy.minRatio)"
            + "\(base.model.family == .resnet ? ", tied=\(proxy.tied.rawValue)" : ""))")
        if let low = scales.values.min(), let high = scales.values.max() {
            say("proxy learning rates: \(scales.count) narrowed layers train at \(formatFixed(Double(low), digits: 2))-"
                + "\(formatFixed(Double(high), digits: 2))x the sampled lr (sqrt of the fan-in ratio), so the winner's lr is the full model's")
        } else {
            say("proxy learning rates: as sampled (\(proxy.transfer == .same ? "lr=same" : "SGD: no transfer"))")
        }
        var out = config
        out.trial = trial
        out.proxy = proxy.text
        return out
    }

    /// Continues the search in `path` (both searches of a `--compare-full` directory).
    public func resume(_ path: String) throws {
        let arms = Self.arms(path)
        let found = StudyArms.found(in: path, candidates: arms.arms, study: .hpo)
        if found == arms.arms {
            let results = try found.map { try runOne(HPORun(resuming: RunDirectory(path: arms.directory($0).path), backend: backend)) }
            try compare(proxy: results[0], full: results[1], directory: path)
        } else if let arm = found.first {
            throw HPOError("\(path) holds the \(arm) search of a --compare-full but not the other one's hpo.json: "
                           + "resume \(arms.directory(arm).path) alone, or start again with --overwrite")
        } else {
            _ = try runOne(HPORun(resuming: RunDirectory(path: path), backend: backend))
        }
    }

    /// Runs one search to its end (trials, then the final training) and says its result.
    @discardableResult
    public func runOne(_ run: HPORun) throws -> (run: HPORun, summary: HPOSummary) {
        let c = run.config
        // Workers, threads and engine as the run first went (hpo.json) unless given now.
        let was = c.execution
        let now = try execution.withSharing(for: c).resolve(was: was)
        if let sharing = now.sharing { say(sharing.description) }
        run.threadsPerTrial = now.threadsPerTrial
        run.threadsForFinal = now.threads   // the final runs alone
        if let was, let notice = was.overrideNotice(now) { say(notice) }
        try run.storeExecution(now)
        run.executor = try makeExecutor(now, run.directory.path + "/ray.log")
        defer { (run.executor as? RayExecutor)?.shutdown() }
        let ended = run.records.filter { $0.status != .running }.count
        say("hpo in \(run.directory.path): \(plural(c.trials, "trial")) of \(c.trial.modelName), \(plural(c.trial.epochs, "epoch")) each, "
            + "\(c.sampler.rawValue) sampler, \(c.pruner.rawValue) pruner, \(now.engine) engine, \(plural(now.workers, "worker")) x "
            + "\(plural(run.threadsPerTrial, "thread")), \(ended) already done")
        let summary = try run.run(progress: say)
        let score = summary.bestScore.map { c.objective == .accuracy ? formatFixed($0 * 100, digits: 2) + "%" : formatFixed($0, digits: 4) } ?? "-"
        say("best trial \(summary.bestTrial.map(String.init) ?? "-"): \(c.objective.rawValue) \(score) "
            + "(\(summary.complete) complete, \(summary.pruned) pruned, \(summary.failed) failed, search \(formatFixed(summary.searchSeconds, digits: 1))s)")
        if let acc = summary.finalTestAccuracy {
            say("final \(c.final.modelName): test accuracy \(formatFixed(acc * 100, digits: 2))% after \(plural(c.finalEpochs, "epoch")) "
                + "(\(formatFixed(summary.finalSeconds ?? 0, digits: 1))s) in \(run.finalDirectory.path)")
        }
        say("wrote \(run.directory.summaryPath), \(run.reportPath)")
        return (run, summary)
    }

    func compare(proxy proxyResult: (run: HPORun, summary: HPOSummary), full fullResult: (run: HPORun, summary: HPOSummary),
                 directory: String) throws {
        let comparison = try HPOReport.writeComparison(proxy: proxyResult, full: fullResult, to: directory)
        let (proxy, full, saved) = (proxyResult.summary, fullResult.summary, comparison.searchTimeSaved)
        func acc(_ x: Double?) -> String { x.map { formatFixed($0 * 100, digits: 2) + "%" } ?? "-" }
        say("")
        // The arms' table (the same columns as `strata search --reuse a,b`); test accuracy: the final's.
        let objective = proxyResult.run.config.objective
        let rows = [("proxy", proxy), ("full model", full)].map { name, s in
            StudyArms.Row(arm: name, seconds: s.searchSeconds, cpuSeconds: s.searchCPUSeconds, trials: s.trials, pruned: s.pruned,
                          failed: s.failed, best: s.bestScore.map { objective == .accuracy ? "accuracy " + acc($0) : "loss " + formatFixed($0, digits: 4) } ?? "-",
                          testAccuracy: s.finalTestAccuracy)
        }
        for line in StudyArms.table(rows) { say(line) }
        if let cpu = comparison.cpuTimeSaved {
            say("search CPU time (user + system): proxy \(formatFixed(proxy.searchCPUSeconds ?? 0, digits: 1))s, full "
                + "\(formatFixed(full.searchCPUSeconds ?? 0, digits: 1))s, saved \(formatFixed(cpu * 100, digits: 1))%")
        }
        say("search time saved by the proxy: \(formatFixed(saved * 100, digits: 1))% (\(directory)/comparison.json, \(directory)/report.html)")
    }
}
