import ArgumentParser
import GPUTensor
import Trainer

struct Grow: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Incremental training: insert sub-networks as validation accuracy flattens.",
        discussion: """
        Training starts with the first sub-network(s) and the classifier. Every --window epochs a line \
        is fitted to the last validation accuracies; when its angle falls to gamma times the previous \
        one, the next sub-network is inserted, initialised by look-ahead (trained alone over the \
        frozen prefix for --lookahead-epochs) or at random. --baseline also trains the full network \
        from scratch under the same epoch budget. Writes metrics.jsonl, summary.json and growth.svg.

        A killed run continues with --resume RUN_DIR (from its last epoch, baseline included) and \
        ends with the same numbers as an uninterrupted one on the CPU.

        Example (the paper's settings):
          strata grow --model resnet20 --data DATA --optimizer rmsprop \\
              --max-epochs 60 --baseline
          strata grow --resume runs/grow-resnet20-s0
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var optimizerOptions: OptimizerOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Epochs per angle window (ws).")
    var window: Int = 3

    @Option(help: "Insert the next sub-network when alpha_i <= gamma * alpha_(i-1).")
    var gamma: Double = 0.5

    @Option(name: .customLong("init"), help: "lookahead or random.")
    var initialization: String = "lookahead"

    @Option(help: "Look-ahead epochs for a new sub-network.")
    var lookaheadEpochs: Int = 2

    @Option(help: "Budget: epochs in all, look-ahead included.")
    var maxEpochs: Int = 30

    @Option(help: "Stop when validation accuracy reaches this fraction (e.g. 0.9).")
    var targetAccuracy: Double?

    @Option(help: "Sub-networks in the first phase (default: 2 for ResNet, whose stem is its own stage; else 1).")
    var startStages: Int?

    @Flag(help: "Also train the full network from scratch under the same budget.")
    var baseline = false

    @Option(help: "Training batch size.")
    var batchSize: Int = 128

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Run directory (default runs/grow-<model>-s<seed>).")
    var output: String?

    @Option(help: ArgumentHelp("Continue the grow run in this directory; its config.json gives every setting.",
                               valueName: "run-dir"))
    var resume: String?

    @Flag(help: "Replace the run in --output (its strata files are removed first); without it a non-empty directory is refused.")
    var overwrite = false

    func validate() throws {
        if resume != nil && overwrite { throw ValidationError("--resume and --overwrite exclude each other") }
        if resume != nil {
            // A flag the resumed run would not use is refused, never silently ignored.
            try refuseUnusedFlags(with: "--resume", allowed: ["resume", "device", "threads", "strict-fp32", "precision"],
                                  why: "a resumed grow run keeps every setting of its config.json")
        }
        guard window >= 2 else { throw ValidationError("--window must be at least 2 epochs (a line needs two points), got \(window)") }
        guard gamma > 0 && gamma <= 1 else { throw ValidationError("--gamma must be in (0, 1], got \(gamma)") }
        guard GrowConfig.Initialization(rawValue: initialization) != nil else {
            throw ValidationError("--init must be lookahead or random")
        }
        guard maxEpochs > 0 else { throw ValidationError("--max-epochs must be at least 1, got \(maxEpochs)") }
        guard lookaheadEpochs >= 0 else { throw ValidationError("--lookahead-epochs must be at least 0, got \(lookaheadEpochs)") }
        if let t = targetAccuracy, !(t > 0 && t <= 1) {
            throw ValidationError("--target-accuracy must be in (0, 1] (a fraction: 0.9 for 90%), got \(t)")
        }
    }

    func run() throws {
        // A resumed grow run keeps its precision (another --precision is refused).
        let precision = try resume.map { resume in
            try deviceOptions.runPrecision(continuing: (try? ConfigFile.readGrowConfig(RunDirectory(path: resume).configPath))?.train.precision,
                                           refuseChangeWith: "--resume \(resume)")
        } ?? deviceOptions.precisionValue
        let backend = try orExit { try deviceOptions.makeBackend(batchSize: batchSize, precision: precision) }
        if let resume {
            let directory = RunDirectory(path: resume)
            let recorder = try orExit { try openRun(directory, kind: .grow, mode: .resume) }
            let (config, data) = try orExit { () throws -> (GrowConfig, RunData) in
                let config = try ConfigFile.readGrowConfig(directory.configPath)
                let data = try RunData.load(config.train.data, seed: config.train.seed)
                try ConfigValidation.check(config, data: DataFacts(data), source: .file(directory.configPath))
                return (config, data)
            }
            try orExit { try growAndReport(config, data: data, backend: backend, recorder: recorder) }
            return
        }
        let (config, data) = try orExit { () throws -> (GrowConfig, RunData) in
            let dataConfig = try dataOptions.config()
            let data = try RunData.load(dataConfig, seed: seed)
            guard data.validation != nil else {
                throw ValidationError("--validation-fraction must be above 0: grow watches validation accuracy, got \(dataConfig.validationFraction)")
            }
            let shape = ImageShape(channels: data.train.channels, height: data.train.height, width: data.train.width)
            let spec = try modelOptions.spec(input: shape, classes: data.train.classes)
            let train = TrainConfig(modelName: modelOptions.name, model: spec, data: dataConfig, epochs: maxEpochs,
                                    batchSize: batchSize, optimizer: try optimizerOptions.config(),
                                    schedule: try optimizerOptions.scheduleConfig(epochs: maxEpochs),
                                    seed: seed, device: deviceOptions.device, precision: precision)
            let config = GrowConfig(train: train, startStages: startStages ?? (spec.family == .resnet ? 2 : 1),
                                    window: window, gamma: gamma,
                                    initialization: GrowConfig.Initialization(rawValue: initialization)!,
                                    lookaheadEpochs: lookaheadEpochs, maxEpochs: maxEpochs, targetAccuracy: targetAccuracy,
                                    baseline: baseline)
            try ConfigValidation.check(config, data: DataFacts(data), source: .flags)
            return (config, data)
        }
        // The directory is opened (and, with --overwrite, emptied) only once the job is known to be valid.
        let directory = RunDirectory(path: output ?? "runs/grow-\(modelOptions.name)-s\(seed)")
        let recorder = try orExit { try openRun(directory, kind: .grow, mode: overwrite ? .overwrite : .new) }
        try orExit { try growAndReport(config, data: data, backend: backend, recorder: recorder) }
    }
}

/// Runs a grow (and optionally its baseline) through `GrowWorkflow`, which writes the run
/// directory through `recorder`; this prints its progress and the final table.
func growAndReport(_ config: GrowConfig, data: RunData, backend: Backend, recorder: RunRecorder) throws {
    let directory = recorder.directory
    let full = try Model(spec: config.train.model)
    print("growing \(config.train.modelName) (\(plural(full.stages.count, "sub-network")): \(full.stages.map(\.name).joined(separator: ", "))) "
          + "on \(data.train.name): \(data.train.count) train, \(data.validation?.count ?? 0) validation, "
          + "\(data.test?.count ?? 0) test, on \(backend.name), \(backend.precision.rawValue)")
    print("window \(config.window), gamma \(config.gamma), init \(config.initialization.rawValue), budget \(plural(config.maxEpochs, "epoch"))")

    let progress = ProgressDisplay()
    var display = GrowDisplay()
    display.observer.batch = { epoch, done, total, running in
        progress.batch(prefix: "epoch \(epoch)", done: done, total: total) {
            let (loss, acc) = running()
            return "loss \(formatFixed(loss, digits: 4)) acc \(formatFixed(acc * 100, digits: 2))%"
        }
    }
    display.epoch = { e in progress.line(epochLine(e.metrics, prefix: "[\(e.stages) sub-net\(e.stages == 1 ? "" : "s"), \(e.phase)]")) }
    display.baselineEpoch = { m in progress.line(epochLine(m, prefix: "[baseline]")) }
    display.line = { progress.line($0) }
    display.heading = { print($0) }
    let result = try GrowWorkflow.run(config, data: data, backend: backend, recorder: recorder, display: display)

    print("\n" + pad("sub-nets", 10) + pad("epochs", 9) + pad("params", 10) + pad("inf FLOPs", 11)
          + pad("cum train FLOPs", 17) + pad("val acc", 9) + pad("test acc", 10) + "ended by")
    for s in result.summary.stages {
        print(pad("\(s.stages)", 10) + pad("\(s.firstEpoch)-\(s.firstEpoch + s.epochs - 1)", 9) + pad("\(s.parameters)", 10)
              + pad(formatCount(s.inferenceFlopsPerImage), 11) + pad(formatCount(s.cumulativeTrainingFlops), 17)
              + pad(percent(s.validationAccuracy), 9) + pad(percent(s.testAccuracy), 10) + s.endReason)
    }
    if let b = result.baseline {
        print(pad("baseline", 10) + pad("1-\(b.epochs)", 9) + pad("\(b.parameters)", 10)
              + pad(formatCount(b.forwardFlopsPerImage), 11) + pad(formatCount(b.cumulativeTrainingFlops), 17)
              + pad(percent(result.baselineValidationAccuracy), 9) + pad(percent(b.testAccuracy), 10) + "budget")
    }
    print("\nfigure: \(directory.figurePath)\nsummary: \(directory.summaryPath)\ncheckpoints: \(checkpointsLine(recorder))")
}

func percent(_ x: Double?) -> String { x.map { formatFixed($0 * 100, digits: 2) + "%" } ?? "-" }

func epochLine(_ m: EpochMetrics, prefix: String) -> String {
    var line = "epoch \(m.epoch) \(prefix) loss \(formatFixed(m.trainLoss, digits: 4)) acc \(formatFixed(m.trainAccuracy * 100, digits: 2))%"
    if let va = m.validationAccuracy { line += " val_acc \(formatFixed(va * 100, digits: 2))%" }
    line += " \(formatFixed(m.seconds, digits: 1))s \(formatCount(m.cumulativeTrainingFlops))FLOP"
    return line
}
