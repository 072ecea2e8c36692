import ArgumentParser
import GPUTensor
import Trainer
#if canImport(Glibc)
import Glibc
#endif

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Architecture and hyperparameter search whose trials reuse each other's trained conv layers.",
        discussion: """
        Each trial runs in a worker process and gets a run directory under the search directory; \
        results go to journal.jsonl (fsynced per trial), summary.json and report.html.

        Examples:
          strata search --space seed000-small --reuse paper --dry-run
          strata search --space S.json --data DATA --output runs/s1
          strata search --resume runs/s1     # after a kill
          strata search --space S.json --reuse none,paper --data DATA --output runs/cmp
          strata search --compare runs/cmp/none runs/cmp/paper --output runs/cmp
        """)

    @Option(help: "A preset (seed000-small, seed000-large) or a JSON space file.")
    var space: String?

    @Option(help: "none, paper or best-prefix; a comma list runs each into <output>/<name>.")
    var reuse: String = "paper"

    @Option(help: "grid, random, tpe or cmaes (tpe and cmaes propose from the finished trials' validation loss; cmaes on the space's ranges).")
    var strategy: String = "grid"

    @Option(help: "random, tpe and cmaes: trials to run.")
    var trials: Int?

    @Option(help: "random, tpe, cmaes: seed of the sampler.")
    var sampleSeed: UInt64 = 0

    @Option(help: "asha, hyperband or none: stop weak trials at rungs of 1, 3, 9, ... epochs (trials then train in segments, each continuing from its checkpoint).")
    var pruner: String = "none"

    @Option(help: "Epochs of every trial (default: the space's).")
    var epochs: Int?

    @Option(help: "Dataset directory: CIFAR-10 binary batches or MNIST/Fashion-MNIST IDX files.")
    var data: String?

    @Option(help: "Fraction of the training images held out for validation.")
    var validationFraction: Double = 0.1

    @Option(help: "Train every trial on at most this many images.")
    var trainLimit: Int?

    @OptionGroup var format: DataFormatOptions

    @Flag(help: "Random shifts and flips (off by default: they make frozen-prefix caching impossible).")
    var augment = false

    @Flag(inversion: .prefixedNo, help: "Cache frozen prefixes' outputs across epochs.")
    var cache = true

    @Option(help: "Host memory for each trial's activation cache, in MiB.")
    var cacheBudget: Int = 1024

    @Option(help: "Disk for the search's prefixes/ (frozen prefixes, cached activations), in MiB; beyond it the least recently used files no running or queued trial needs are removed.")
    var diskBudget: Int = PrefixStore.defaultBudget >> 20

    @Option(help: "Trials at once (default: one per core).")
    var workers: Int?

    @Option(help: "CPU cores to split between the workers (default: all online).")
    var threads: Int?

    @OptionGroup var engineOptions: EngineOptions

    @Option(help: "CUDA: trials sharing each GPU, 1...\(DeviceSharing.maxTrialsPerDevice) (default: as many as fit the card's free memory by an estimate of the largest trial); --workers defaults to GPUs x this. Not for the CPU.")
    var trialsPerDevice: Int?

    @Option(help: "cpu, cuda, cuda:N or auto (CUDA when built with it and a GPU answers), for every trial.")
    var device: String = "auto"

    @Option(help: "fp32, bf16 or fp16 for every trial: the format of convolutions and GEMMs (weights stay FP32; see strata train --help).")
    var precision: String = "fp32"

    @Option(help: "Search directory (default runs/search-<space>-<reuse>).")
    var output: String?

    @Option(help: "Continue the search in this directory.")
    var resume: String?

    @Flag(help: "Let --output replace what is there: removes the search's files (search.json, journal.jsonl, trials/, summary.json, report.html, ...) from it first; other files stay.")
    var overwrite = false

    @Flag(help: "With --resume: run failed trials again.")
    var retryFailed = false

    @Flag(help: "Print the plan and run nothing.")
    var dryRun = false

    @Flag(help: "With --dry-run: the plan as one JSON object.")
    var json = false

    @Option(parsing: .upToNextOption, help: "Search directories to report side by side (writes <output>/report.html).")
    var compare: [String] = []

    func validate() throws {
        if compare.isEmpty && resume == nil && space == nil { throw ValidationError("--space is required (or --resume DIR, --compare DIRS)") }
        try checkCPUBound(workers, flag: "--workers")
        try checkCPUBound(threads, flag: "--threads")
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1") }
        guard (0...(1 << 30)).contains(diskBudget) else { throw ValidationError("--disk-budget must be in 0...1073741824 MiB, not \(diskBudget)") }
        try engineOptions.validate()
        if let line = DeviceSharing.problem(trialsPerDevice: trialsPerDevice, device: resume == nil ? device : "auto") { throw ValidationError(line) }
        guard ["grid", "random", "tpe", "cmaes"].contains(strategy) else { throw ValidationError("--strategy must be grid, random, tpe or cmaes, not '\(strategy)'") }
        if strategy != "grid" && (trials ?? 0) < 1 { throw ValidationError("--strategy \(strategy) needs --trials N (N >= 1)") }
        if strategy == "grid" && trials != nil { throw ValidationError("--trials goes with --strategy random") }
        guard (0..<1).contains(validationFraction) else { throw ValidationError("--validation-fraction must be in [0, 1)") }
        guard Precision(parsing: precision) != nil else { throw ValidationError("--precision must be fp32, bf16 or fp16, not '\(precision)'") }
        _ = try reuseList()
        guard StudyPrunerKind(rawValue: pruner) != nil else { throw ValidationError("--pruner must be asha, hyperband or none, not '\(pruner)'") }
        if resume != nil {
            if overwrite { throw ValidationError("--resume and --overwrite exclude each other") }
            // What a resumed search applies; everything else comes from its search.json.
            try refuseUnusedFlags(with: "--resume", allowed: Set(["resume", "retry-failed", "workers", "threads", "disk-budget", "trials-per-device"])
                                    .union(EngineOptions.flagNames),
                                  why: "a resumed search keeps the settings in its search.json (start a new search with --output to change them)")
        }
    }

    func reuseList() throws -> [ReuseStrategy] {
        let parts = reuse.split(separator: ",").map(String.init)
        let list = parts.compactMap(ReuseStrategy.init(rawValue:))
        guard !list.isEmpty, list.count == parts.count else {
            throw ValidationError("--reuse must be none, paper or best-prefix (or a comma list of them), not '\(reuse)'")
        }
        return list
    }

    func run() throws {
        var workflow = SearchWorkflow(execution: ExecutionRequest(workers: workers, threads: threads,
                                                                  engine: givenOnCommandLine("--engine") ? engineOptions.engine : nil),
                                      makeExecutor: engineOptions.executorFactory)
        workflow.execution.trialsPerDevice = trialsPerDevice
        let display = SearchDisplay()
        workflow.retryFailed = retryFailed
        workflow.prefixBudget = diskBudget << 20
        workflow.say = { display.line($0) }
        workflow.loopEnded = { display.clear() }
        workflow.observe = { engine in
            let path = engine.directory.path
            engine.observer.resumed = { n in if n > 0 { display.line("\(path): \(plural(n, "trial")) already in the journal") } }
            engine.observer.finished = { record, progress in display.finished(record, progress) }
            engine.observer.tick = { display.tick($0) }
        }
        if !compare.isEmpty {
            guard let output else { return try orExit { () throws -> Void in throw SearchError("--compare needs --output DIR for the combined report") } }
            return try orExit { try workflow.compare(compare, output: output, overwrite: overwrite) }
        }
        if let resume { return try orExit { try workflow.resume(resume) } }
        let space = try orExit { try SearchSpace.load(self.space!, epochs: epochs) }
        let strategy: SearchStrategy = switch self.strategy {
        case "random": .random(trials: trials!, seed: sampleSeed)
        case "tpe": .tpe(trials: trials!, seed: sampleSeed)
        case "cmaes": .cmaes(trials: trials!, seed: sampleSeed)
        default: .grid
        }
        let reuses = try reuseList()
        if dryRun {
            let plans = try orExit { try reuses.map { r in (r, try settings(space, strategy, r, DataConfig(path: data ?? "")).plan()) } }
            return printPlans(plans, space: space)
        }
        guard let data else { throw ValidationError("--data is required to run a search (the presets are CIFAR-10 spaces)") }
        let dataConfig = try orExit { () throws -> DataConfig in
            _ = try format.options()   // refuses bad --labels, --image-size, --resize-filter values
            let kind = try format.kind()?.rawValue ?? DatasetLoader.detectKind(path: data).rawValue
            // Absolute, so that search.json and every job.json work from any directory.
            var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let path = realpath(data, &resolved) != nil ? String(cString: resolved) : data
            return DataConfig(kind: kind, path: path, validationFraction: validationFraction, augment: augment,
                              trainLimit: trainLimit, labels: format.labels, imageSize: try format.imageSizeValue(),
                              resizeFilter: format.resizeFilter)
        }
        let base = output ?? "runs/search-\(space.name.split(separator: "/").last.map(String.init) ?? "space")-\(reuse.replacingCommas())"
        try orExit { try workflow.start(settings(space, strategy, reuses[0], dataConfig), reuses: reuses, output: base, overwrite: overwrite) }
    }

    func settings(_ space: SearchSpace, _ strategy: SearchStrategy, _ reuse: ReuseStrategy, _ data: DataConfig) -> SearchSettings {
        SearchSettings(space: space, strategy: strategy, reuse: reuse, data: data, device: device, cache: cache,
                       cacheBudget: cacheBudget << 20, pruner: pruner == "none" ? nil : StudyPrunerKind(rawValue: pruner),
                       precision: Precision(parsing: precision) ?? .fp32)
    }

    func printPlans(_ plans: [(ReuseStrategy, [PlannedTrial])], space: SearchSpace) {
        struct Trial: Encodable {
            var id: String
            var config: TrialConfig
            var donor: String?
            var reuse_layers: Int
            var donor_candidates: Int?

            enum CodingKeys: String, CodingKey { case id, config, donor, reuse_layers, donor_candidates }
            // `donor` is always present: a trial id or null.
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(id, forKey: .id)
                try c.encode(config, forKey: .config)
                try c.encode(donor, forKey: .donor)
                try c.encode(reuse_layers, forKey: .reuse_layers)
                try c.encodeIfPresent(donor_candidates, forKey: .donor_candidates)
            }
        }
        struct Plan: Encodable {
            var space: String
            var reuse: String
            var count: Int
            var with_donor: Int
            var trials: [Trial]
        }
        let docs = plans.map { r, plan in
            Plan(space: space.name, reuse: r.rawValue, count: plan.count,
                 with_donor: plan.filter { $0.reuseLayers > 0 }.count,
                 trials: plan.map { p in
                     Trial(id: p.id, config: p.config, donor: p.fixedDonor, reuse_layers: p.reuseLayers,
                           donor_candidates: r == .bestPrefix && p.reuseLayers > 0 ? p.dependencies.count : nil)
                 })
        }
        if json {
            for d in docs { print(encodeJSON(d)) }
            return
        }
        for d in docs {
            print("\(d.space), reuse \(d.reuse): \(plural(d.count, "trial")), \(d.with_donor) with a donor")
            for t in d.trials.prefix(20) {
                let donor = t.donor ?? (t.donor_candidates.map { "best of \($0) candidates" } ?? "-")
                print("  \(t.id)  \(t.config.shortDescription)  donor \(donor)")
            }
            if d.trials.count > 20 { print("  ... \(d.trials.count - 20) more (--json for all)") }
        }
    }
}

/// The hidden worker command: runs the trial a `job.json` describes (see `ProcessExecutor`).
struct SearchTrial: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search-trial", abstract: "Run one search trial (internal).",
                                                    shouldDisplay: false)

    @Argument(help: "The trial's job.json.")
    var job: String

    func run() throws {
        if let p = getenv("STRATA_SEARCH_PARENT"), let pid = Int32(String(cString: p)) { TrialRunner.exitWithParent(pid) }
        let job = try orExit { try TrialJob.read(from: self.job) }
        let outcome = TrialRunner.run(job)
        print(encodeJSON(outcome))
        if outcome.fault != nil { throw ExitCode(TrialRunner.faultExitStatus) }
        if outcome.status == .failed { throw ExitCode.failure }
    }
}

/// Live line on a TTY (done, running, queued, ETA), one line per finished trial.
final class SearchDisplay {
    let interactive = isatty(STDOUT_FILENO) != 0 && getenv("CI") == nil
    private var drawn = false
    private var lastDraw = 0.0

    func line(_ text: String) {
        clear()
        print(text)
        fflush(stdout)
    }

    func clear() {
        if drawn { fputs("\r\u{1B}[2K", stdout); drawn = false }
    }

    func finished(_ r: StudyEvent, _ p: SearchProgress) {
        var text = "[\(p.done)/\(p.done + p.running + p.queued)] \(r.id) \(r.config?.shortDescription ?? "")"
        let scores = "  val_loss \(r.validationLoss.map { formatFixed($0, digits: 4) } ?? "-")"
            + "  val_acc \(r.validationAccuracy.map { formatFixed($0 * 100, digits: 2) + "%" } ?? "-")"
            + "  \(formatFixed(r.seconds ?? 0, digits: 1))s"
        switch r.status {
        case .finished: text += scores
        case .running: text += "  promoted at epoch \(r.epochs ?? 0)" + scores
        case .pruned: text += "  pruned at epoch \(r.epochs ?? 0)" + scores
        case .failed: text += "  FAILED: \(r.error ?? "")"
        }
        if let d = r.donor { text += "  donor \(d) (\(plural(r.reuseLayers ?? 0, "layer")))" }
        line(text)
        tick(p, force: true)
    }

    func tick(_ p: SearchProgress, force: Bool = false) {
        guard interactive else { return }
        let now = monotonicSeconds()
        if !force && now - lastDraw < 0.5 { return }
        lastDraw = now
        var text = "search: \(p.done) done\(p.failed > 0 ? " (\(p.failed) failed)" : ""), \(p.running) running, \(p.queued) queued, \(duration(p.elapsed))"
        if let eta = p.eta { text += ", ETA \(duration(eta))" }
        fputs("\r\u{1B}[2K" + text, stdout)
        fflush(stdout)
        drawn = true
    }

    func duration(_ s: Double) -> String {
        let t = clampedInt(s.rounded(), 0...1_000_000_000)
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }
}

/// The binary's real path (what a Ray worker runs).
func realSelfExecutable() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    return n > 0 ? String(cString: buf) : CommandLine.arguments[0]
}

/// Whether `flag` was given (as `--flag V` or `--flag=V`), for options whose default cannot
/// be told from a value given.
func givenOnCommandLine(_ flag: String) -> Bool {
    CommandLine.arguments.contains { $0 == flag || $0.hasPrefix(flag + "=") }
}

/// `python/` of the source tree the binary was built in (the first folder above the binary that
/// holds `python/strata_ray`), else `python` in the working directory.
func defaultRayPackage() -> String {
    var parts = realSelfExecutable().split(separator: "/").map(String.init)
    while !parts.isEmpty {
        parts.removeLast()
        let candidate = "/" + (parts + ["python"]).joined(separator: "/")
        if access(candidate + "/strata_ray/driver.py", R_OK) == 0 { return candidate }
    }
    return "python"
}

/// The running binary: `/proc/self/exe` itself, so that workers run this very build even when
/// the file is rebuilt during a search.
func selfExecutable() -> String {
    if access("/proc/self/exe", X_OK) == 0 { return "/proc/self/exe" }
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    return n > 0 ? String(cString: buf) : CommandLine.arguments[0]
}

extension String {
    func replacingCommas() -> String { split(separator: ",").joined(separator: "+") }
}
