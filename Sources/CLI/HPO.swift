import ArgumentParser
import GPUTensor
import Trainer
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

struct HPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hpo",
        abstract: "Hyperparameter search (TPE, CMA-ES or random, ASHA/Hyperband early stopping), optionally on a Synflow-pruned proxy, then the full model trained with the winner.",
        discussion: """
        Trials train the model (or, with --proxy synflow, its channel-pruned proxy: see `strata prune`) for --epochs \
        each, --workers at a time, through the search engine (worker processes, or Ray with --engine ray); --pruner \
        stops weak trials at rungs of 1, 3, 9, ... epochs: a trial's job trains it up to its next rung, and a promoted \
        trial continues from its checkpoint. The best complete trial's hyperparameters then train the full model for \
        --final-epochs, as one more job of the same engine with all --threads (OUTPUT/final, its run directory \
        OUTPUT/final/run; a killed final continues from its last checkpoint with --resume). Results: journal.jsonl, summary.json, report.html. --compare-full runs the \
        same search on the full model too (OUTPUT/proxy, OUTPUT/full) and reports both side by side \
        (OUTPUT/report.html, OUTPUT/comparison.json).

        The space file (default: lr, weight_decay, batch_size):
          {"lr": {"low": 1e-4, "high": 0.1, "log": true}, "batch_size": {"choices": [32, 64, 128]}}
        Hyperparameters: lr, weight_decay, momentum, batch_size, optimizer.

        Example:
          strata hpo --model cnn --filters 32,64,128 --data DATA --proxy synflow \\
              --trials 20 --compare-full --output runs/hpo
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var optimizerOptions: OptimizerOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Space file (JSON); default: lr, weight_decay and batch_size.")
    var space: String?

    @Option(help: "tpe, random or cmaes (CMA-ES on the numeric hyperparameters, choices drawn uniformly).")
    var sampler: String = "tpe"

    @Option(help: "Trials to run.")
    var trials: Int = 20

    @Option(help: "asha, hyperband or none.")
    var pruner: String = "asha"

    @Option(help: "What trials are ranked by: accuracy (validation, maximised) or loss (validation, minimised).")
    var objective: String = "accuracy"

    @Option(help: "Epochs per trial.")
    var epochs: Int = 5

    @Option(help: "Epochs of the final training of the full model with the winner (0: none).")
    var finalEpochs: Int = 20

    @Option(help: "synflow[:p=85,m=0.15,lr=scaled|same,tied=keep|prune]: search on a pruned proxy of the model (lr=scaled, the default: its narrowed layers' learning rates follow their fan-in, so that the lr found is the full model's; lr=same: as sampled; tied: a ResNet's shortcut-tied stage widths kept, the default, or pruned too, as `strata prune --tied`).")
    var proxy: String?

    @Flag(help: "Also search the full model with the same sampler, seed and budget, and compare.")
    var compareFull = false

    @Option(help: "Training batch size (when the space does not search it).")
    var batchSize: Int = 128

    @Option(help: "Seed of the sampler, the models and the data split.")
    var seed: UInt64 = 0

    @Option(help: "Directory of the search (default runs/hpo-<model>-s<seed>).")
    var output: String?

    @Option(help: "Continue the search in this directory.")
    var resume: String?

    @Flag(help: "Let --output replace an hpo search there: removes its files (hpo.json, journal.jsonl, trials/, final/, summary.json, report.html, ...) first; other files stay.")
    var overwrite = false

    @Option(help: "Trials at once. 1 by default, unlike search's one per core: with one worker the sampler proposes each trial from every earlier result, so the search is the same on every machine.")
    var workers: Int = 1

    @OptionGroup var engineOptions: EngineOptions

    @Flag(help: "Print the plan (budget, sampler, pruner rungs, space, the trials proposed before any result) and run nothing.")
    var dryRun = false

    func validate() throws {
        guard ["tpe", "random", "cmaes"].contains(sampler) else { throw ValidationError("--sampler must be tpe, random or cmaes, not '\(sampler)'") }
        guard ["asha", "hyperband", "none"].contains(pruner) else { throw ValidationError("--pruner must be asha, hyperband or none, not '\(pruner)'") }
        guard ["accuracy", "loss"].contains(objective) else { throw ValidationError("--objective must be accuracy or loss, not '\(objective)'") }
        guard trials >= 1 else { throw ValidationError("--trials must be at least 1, got \(trials)") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard finalEpochs >= 0 else { throw ValidationError("--final-epochs must be at least 0, got \(finalEpochs)") }
        guard batchSize >= 2 else { throw ValidationError("--batch-size must be at least 2 (batch norm needs two images), got \(batchSize)") }
        try checkCPUBound(workers, flag: "--workers")
        try engineOptions.validate()
        if dryRun && resume != nil { throw ValidationError("--dry-run plans a new search; it cannot be given with --resume") }
        if compareFull && proxy == nil { throw ValidationError("--compare-full compares a --proxy search with the full one: give --proxy") }
        if let proxy { _ = try Self.parseProxy(proxy) }
        if resume != nil {
            if overwrite { throw ValidationError("--resume and --overwrite exclude each other") }
            // hpo.json holds the search's settings; only where it runs may change.
            try refuseUnusedFlags(with: "--resume", allowed: Set(["resume", "device", "threads", "strict-fp32", "workers"])
                                    .union(EngineOptions.flagNames),
                                  why: "a resumed hpo keeps the settings in its hpo.json (start a new one with --output to change them)")
        }
    }

    /// `synflow`, `synflow:p=90`, `synflow:p=85,m=0.15,lr=same,tied=prune`.
    static func parseProxy(_ text: String) throws -> (percentile: Double, minRatio: Double, transfer: LearningRateTransfer,
                                                      tied: TiedChannels) {
        let usage = "synflow[:p=85,m=0.15,lr=scaled|same,tied=keep|prune]"
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.first == "synflow" else { throw ValidationError("--proxy must be \(usage), not '\(text)'") }
        var p = 85.0, m = 0.15, transfer = LearningRateTransfer.scaled, tied = TiedChannels.keep
        for kv in parts.dropFirst().first?.split(separator: ",") ?? [] {
            let pair = kv.split(separator: "=")
            guard pair.count == 2 else { throw ValidationError("--proxy: '\(kv)' is not key=value (\(usage))") }
            switch pair[0] {
            case "p", "m":
                guard let v = Double(pair[1]) else { throw ValidationError("--proxy: '\(kv)' is not a number") }
                if pair[0] == "p" { p = v } else { m = v }
            case "lr":
                guard let t = LearningRateTransfer(rawValue: String(pair[1])) else {
                    throw ValidationError("--proxy: lr must be scaled or same, not '\(pair[1])'")
                }
                transfer = t
            case "tied":
                guard let t = TiedChannels(rawValue: String(pair[1])) else {
                    throw ValidationError("--proxy: tied must be keep or prune, not '\(pair[1])'")
                }
                tied = t
            default: throw ValidationError("--proxy: unknown setting '\(pair[0])' (p, m, lr, tied)")
            }
        }
        guard (0...100).contains(p), m > 0 && m <= 1 else { throw ValidationError("--proxy: p must be in [0, 100] and m in (0, 1]") }
        return (p, m, transfer, tied)
    }

    func run() throws {
        let backend = try orExit { try deviceOptions.makeBackend() }
        if let resume {
            let dirs = ["proxy", "full"].map { RunDirectory(path: resume + "/" + $0) }
            if dirs.allSatisfy({ $0.exists($0.path + "/hpo.json") }) {
                let results = try dirs.map { dir in try orExit { try runOne(HPORun(resuming: dir, backend: backend)) } }
                try orExit { try compare(proxy: results[0], full: results[1], directory: resume) }
            } else {
                try orExit { _ = try runOne(HPORun(resuming: RunDirectory(path: resume), backend: backend)) }
            }
            return
        }
        let (base, data, space) = try orExit { () throws -> (TrainConfig, RunData, HPOSpace) in
            let dataConfig = try dataOptions.config()
            let data = try RunData.load(dataConfig, seed: seed)
            let shape = ImageShape(channels: data.train.channels, height: data.train.height, width: data.train.width)
            let config = TrainConfig(modelName: modelOptions.name, model: try modelOptions.spec(input: shape, classes: data.train.classes),
                                     data: dataConfig, epochs: epochs, batchSize: batchSize,
                                     optimizer: try optimizerOptions.config(),
                                     schedule: try optimizerOptions.scheduleConfig(epochs: epochs),
                                     seed: seed, device: deviceOptions.device)
            try ConfigValidation.check(config, data: DataFacts(data), source: .flags)
            return (config, data, try self.space.map(HPOParameter.readSpace) ?? HPOParameter.defaultSpace())
        }
        var final = base
        final.epochs = max(finalEpochs, 1)
        final.schedule = try optimizerOptions.scheduleConfig(epochs: final.epochs)
        func hpoConfig(trial: TrainConfig, proxy: String?) -> HPOConfig {
            HPOConfig(trial: trial, final: final, space: space, sampler: HPOConfig.SamplerKind(rawValue: sampler)!,
                      pruner: HPOConfig.PrunerKind(rawValue: pruner)!, objective: HPOConfig.Objective(rawValue: objective)!,
                      trials: trials, finalEpochs: finalEpochs, proxy: proxy)
        }
        let root = output ?? "runs/hpo-\(modelOptions.name)-s\(seed)"
        // Nothing of a user's is written over; an hpo already there is continued with --resume.
        if !dryRun {
            try orExit {
                let folder = try OutputPolicy(overwrite: overwrite).prepareFolder(root, for: compareFull ? .hpoComparison : .hpo)
                if folder.sameStudy {
                    throw OutputError(path: root, flag: "--output", reason: "already holds an hpo search: pass --resume \(root) to continue it, "
                                      + "or --overwrite to replace it")
                }
                if let notice = folder.notice { print(notice) }
            }
        }
        func plan(_ config: HPOConfig, _ directory: String) throws {
            for line in try orExit({ try HPOPlan.lines(config, directory: directory) }) { print(line) }
        }
        guard let proxy else {
            if dryRun { return try plan(hpoConfig(trial: base, proxy: nil), root) }
            try orExit { _ = try runOne(HPORun(config: hpoConfig(trial: base, proxy: nil), directory: RunDirectory(path: root),
                                                backend: backend, data: data)) }
            return
        }
        let (p, m, transfer, tied) = try Self.parseProxy(proxy)
        let report = try orExit { try Pruning.prune(base.model, seed: seed, percentile: p, minRatio: m, tied: tied, backend: backend) }
        var trial = base
        trial.model = report.spec
        trial.modelName = base.modelName + "-proxy"
        let scales = try orExit { try transfer.scales(full: base.model, proxy: report.spec, optimizer: base.optimizer.kind) }
        trial.optimizer.learningRateScales = scales.isEmpty ? nil : scales
        print("proxy: \(report.paramsBefore) -> \(report.paramsAfter) parameters, \(formatCount(report.flopsBefore)) -> "
              + "\(formatCount(report.flopsAfter))FLOP forward per image (synflow, p=\(p), m=\(m)\(base.model.family == .resnet ? ", tied=\(tied.rawValue)" : ""))")
        if let low = scales.values.min(), let high = scales.values.max() {
            print("proxy learning rates: \(scales.count) narrowed layers train at \(formatFixed(Double(low), digits: 2))-"
                  + "\(formatFixed(Double(high), digits: 2))x the sampled lr (sqrt of the fan-in ratio), so the winner's lr is the full model's")
        } else {
            print("proxy learning rates: as sampled (\(transfer == .same ? "lr=same" : "SGD: no transfer"))")
        }
        let proxyConfig = hpoConfig(trial: trial, proxy: proxy)
        if dryRun {
            try plan(proxyConfig, compareFull ? root + "/proxy" : root)
            if compareFull { try plan(hpoConfig(trial: base, proxy: nil), root + "/full") }
            return
        }
        guard compareFull else {
            try orExit { _ = try runOne(HPORun(config: proxyConfig, directory: RunDirectory(path: root), backend: backend, data: data)) }
            return
        }
        let proxyResult = try orExit {
            try runOne(HPORun(config: proxyConfig, directory: RunDirectory(path: root + "/proxy"), backend: backend, data: data))
        }
        let fullResult = try orExit {
            try runOne(HPORun(config: hpoConfig(trial: base, proxy: nil), directory: RunDirectory(path: root + "/full"),
                              backend: backend, data: data))
        }
        try orExit { try compare(proxy: proxyResult, full: fullResult, directory: root) }
    }

    func runOne(_ run: HPORun) throws -> (run: HPORun, summary: HPOSummary) {
        let c = run.config
        // Workers, threads and engine as the run first went (hpo.json) unless given now.
        let was = c.execution
        let workers = givenOnCommandLine("--workers") ? self.workers : was?.workers ?? self.workers
        var engineOptions = self.engineOptions
        if let was, !givenOnCommandLine("--engine") { engineOptions.engine = was.engine }
        // --threads: the cores split between the workers (and the final training's).
        let cores = deviceOptions.threads ?? was?.threads ?? max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        run.threadsPerTrial = max(1, cores / workers)
        run.threadsForFinal = cores   // the final runs alone
        let execution = StudyExecution(workers: workers, threads: cores, threadsPerTrial: run.threadsPerTrial, engine: engineOptions.engine)
        if let was, let notice = was.overrideNotice(execution) { print(notice) }
        try run.storeExecution(execution)
        run.executor = try engineOptions.makeExecutor(workers: workers, cores: cores, logPath: run.directory.path + "/ray.log")
        defer { (run.executor as? RayExecutor)?.shutdown() }
        let ended = run.records.filter { $0.status != .running }.count
        print("hpo in \(run.directory.path): \(plural(c.trials, "trial")) of \(c.trial.modelName), \(plural(c.trial.epochs, "epoch")) each, "
              + "\(c.sampler.rawValue) sampler, \(c.pruner.rawValue) pruner, \(engineOptions.engine) engine, \(plural(workers, "worker")) x "
              + "\(plural(run.threadsPerTrial, "thread")), \(ended) already done")
        let summary = try run.run { print($0); fflush(stdout) }
        let score = summary.bestScore.map { c.objective == .accuracy ? formatFixed($0 * 100, digits: 2) + "%" : formatFixed($0, digits: 4) } ?? "-"
        print("best trial \(summary.bestTrial.map(String.init) ?? "-"): \(c.objective.rawValue) \(score) "
              + "(\(summary.complete) complete, \(summary.pruned) pruned, \(summary.failed) failed, search \(formatFixed(summary.searchSeconds, digits: 1))s)")
        if let acc = summary.finalTestAccuracy {
            print("final \(c.final.modelName): test accuracy \(formatFixed(acc * 100, digits: 2))% after \(plural(c.finalEpochs, "epoch")) "
                  + "(\(formatFixed(summary.finalSeconds ?? 0, digits: 1))s) in \(run.finalDirectory.path)")
        }
        print("wrote \(run.directory.summaryPath), \(run.reportPath)")
        return (run, summary)
    }

    func compare(proxy proxyResult: (run: HPORun, summary: HPOSummary), full fullResult: (run: HPORun, summary: HPOSummary),
                 directory: String) throws {
        let comparison = try HPOReport.writeComparison(proxy: proxyResult, full: fullResult, to: directory)
        let (proxy, full, saved) = (proxyResult.summary, fullResult.summary, comparison.searchTimeSaved)
        func acc(_ x: Double?) -> String { x.map { formatFixed($0 * 100, digits: 2) + "%" } ?? "-" }
        print("")
        print("                 search time   trials (pruned)   best trial score   final test accuracy")
        for (name, s) in [("proxy", proxy), ("full model", full)] {
            print("\(name.padding(16)) \((formatFixed(s.searchSeconds, digits: 1) + "s").padding(13)) \("\(s.trials) (\(s.pruned))".padding(17)) "
                  + "\(acc(s.bestScore).padding(18)) \(acc(s.finalTestAccuracy))")
        }
        if let cpu = comparison.cpuTimeSaved {
            print("search CPU time (user + system): proxy \(formatFixed(proxy.searchCPUSeconds ?? 0, digits: 1))s, full "
                  + "\(formatFixed(full.searchCPUSeconds ?? 0, digits: 1))s, saved \(formatFixed(cpu * 100, digits: 1))%")
        }
        print("search time saved by the proxy: \(formatFixed(saved * 100, digits: 1))% (\(directory)/comparison.json, \(directory)/report.html)")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
