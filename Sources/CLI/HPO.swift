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

    @Option(help: "CUDA: trials sharing each GPU, 1...\(DeviceSharing.maxTrialsPerDevice); when given, --workers defaults to GPUs x this. Not for the CPU.")
    var trialsPerDevice: Int?

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
        if let line = DeviceSharing.problem(trialsPerDevice: trialsPerDevice, device: deviceOptions.device) { throw ValidationError(line) }
        if dryRun && resume != nil { throw ValidationError("--dry-run plans a new search; it cannot be given with --resume") }
        if compareFull && proxy == nil { throw ValidationError("--compare-full compares a --proxy search with the full one: give --proxy") }
        if let proxy { _ = try Self.parseProxy(proxy) }
        if resume != nil {
            if overwrite { throw ValidationError("--resume and --overwrite exclude each other") }
            // hpo.json holds the search's settings; only where it runs may change.
            try refuseUnusedFlags(with: "--resume", allowed: Set(["resume", "device", "threads", "strict-fp32", "workers", "precision", "trials-per-device"])
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
        // The batch picks a CUDA backend's layout (as a trial's job does): the run's own when resumed.
        let stored = resume.flatMap { r in
            [r + "/hpo.json", r + "/proxy/hpo.json"].lazy.compactMap { try? RunDirectory(path: r).readJSON(HPOConfig.self, from: $0) }.first?.final
        }
        // A resumed hpo keeps its precision (another --precision is refused).
        let precision = try deviceOptions.runPrecision(continuing: stored?.precision, refuseChangeWith: resume.map { "--resume \($0)" })
        let backend = try orExit { try deviceOptions.makeBackend(batchSize: stored?.batchSize ?? batchSize, precision: precision) }
        var workflow = HPOWorkflow(execution: ExecutionRequest(workers: givenOnCommandLine("--workers") ? workers : nil,
                                                               threads: deviceOptions.threads,
                                                               engine: givenOnCommandLine("--engine") ? engineOptions.engine : nil,
                                                               defaultWorkers: workers),
                                   makeExecutor: engineOptions.executorFactory, backend: backend)
        workflow.execution.trialsPerDevice = trialsPerDevice
        workflow.say = { print($0); fflush(stdout) }
        if let resume { return try orExit { try workflow.resume(resume) } }
        let (config, data) = try orExit { () throws -> (HPOConfig, RunData) in
            let dataConfig = try dataOptions.config()
            let data = try RunData.load(dataConfig, seed: seed)
            let shape = ImageShape(channels: data.train.channels, height: data.train.height, width: data.train.width)
            let base = TrainConfig(modelName: modelOptions.name, model: try modelOptions.spec(input: shape, classes: data.train.classes),
                                   data: dataConfig, epochs: epochs, batchSize: batchSize,
                                   optimizer: try optimizerOptions.config(),
                                   schedule: try optimizerOptions.scheduleConfig(epochs: epochs),
                                   seed: seed, device: deviceOptions.device, precision: precision)
            try ConfigValidation.check(base, data: DataFacts(data), source: .flags)
            let space = try self.space.map(HPOParameter.readSpace) ?? HPOParameter.defaultSpace()
            var final = base
            final.epochs = max(finalEpochs, 1)
            final.schedule = try optimizerOptions.scheduleConfig(epochs: final.epochs)
            let config = HPOConfig(trial: base, final: final, space: space, sampler: HPOConfig.SamplerKind(rawValue: sampler)!,
                                   pruner: HPOConfig.PrunerKind(rawValue: pruner)!, objective: HPOConfig.Objective(rawValue: objective)!,
                                   trials: trials, finalEpochs: finalEpochs, proxy: nil)
            return (config, data)
        }
        let proxySettings = try proxy.map { text in
            let (p, m, transfer, tied) = try Self.parseProxy(text)
            return HPOProxy(text: text, percentile: p, minRatio: m, transfer: transfer, tied: tied)
        }
        try orExit {
            try workflow.start(config, data: data, proxy: proxySettings, compareFull: compareFull,
                               output: output ?? "runs/hpo-\(modelOptions.name)-s\(seed)", overwrite: overwrite, dryRun: dryRun)
        }
    }
}
