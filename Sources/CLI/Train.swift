import ArgumentParser
import GPUTensor
import Trainer

/// Optimizer and schedule flags.
struct OptimizerOptions: ParsableArguments {
    @Option(help: "sgd, rmsprop, adam or adamw.")
    var optimizer: String = "adam"

    @Option(name: .customLong("lr"), help: "Base learning rate (default: 0.1 sgd, 1e-4 rmsprop, 1e-3 adam).")
    var learningRate: Float?

    @Option(help: "Momentum (sgd, rmsprop; default 0.9).")
    var momentum: Float?

    @Flag(help: "Nesterov momentum (sgd).")
    var nesterov = false

    @Option(help: "Weight decay (default 1e-4 for sgd and rmsprop, 0 for adam, 1e-2 for adamw).")
    var weightDecay: Float?

    @Option(help: "constant, steps:E1,E2[@GAMMA] or cosine[:MIN_LR].")
    var schedule: String = "constant"

    @Option(help: "Linear warm-up epochs (may be fractional).")
    var warmup: Double = 0

    @Option(name: .customLong("rmsprop-alpha"),
            help: "RMSProp smoothing constant (default 0.9, Keras' rho as in the paper; PyTorch's default is 0.99).")
    var rmspropAlpha: Float?

    @Option(name: .customLong("rmsprop-eps"),
            help: "RMSProp epsilon (default 1e-7, Keras' as in the paper; PyTorch's default is 1e-8).")
    var rmspropEpsilon: Float?

    func config() throws -> OptimizerConfig {
        if optimizer != "rmsprop" && (rmspropAlpha != nil || rmspropEpsilon != nil) {
            throw ValidationError("--rmsprop-alpha and --rmsprop-eps need --optimizer rmsprop, not '\(optimizer)'")
        }
        return try optimizerConfig(optimizer, learningRate: learningRate, momentum: momentum, nesterov: nesterov,
                                   weightDecay: weightDecay, alpha: rmspropAlpha, epsilon: rmspropEpsilon)
    }

    func scheduleConfig(epochs: Int) throws -> LearningRateSchedule {
        guard let s = LearningRateSchedule.parse(schedule, totalEpochs: epochs, warmupEpochs: warmup) else {
            throw ValidationError("--schedule must be constant, steps:E1,E2[@GAMMA] or cosine[:MIN], not '\(schedule)'")
        }
        return s
    }
}

/// `OptimizerConfig.named`, its error said as the `--optimizer` flag's.
func optimizerConfig(_ name: String, learningRate: Float? = nil, momentum: Float? = nil, nesterov: Bool = false,
                     weightDecay: Float? = nil, alpha: Float? = nil, epsilon: Float? = nil) throws -> OptimizerConfig {
    do {
        return try OptimizerConfig.named(name, learningRate: learningRate, momentum: momentum, nesterov: nesterov,
                                         weightDecay: weightDecay, alpha: alpha, epsilon: epsilon)
    } catch is UnknownOptimizer {
        throw ValidationError("--optimizer must be sgd, rmsprop, adam or adamw, not '\(name)'")
    }
}

/// Dataset flags.
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset: a directory (CIFAR-10/100 binary, MNIST/Fashion-MNIST IDX, class folders of .png/.jpg, .npy arrays) or an .npz file.")
    var data: String = "/usr/share/datasets/fashion-mnist"

    @OptionGroup var format: DataFormatOptions

    @Option(help: "Fraction of the training images held out for validation.")
    var validationFraction: Double = 0.1

    @Option(help: "Train on at most this many images (quick runs).")
    var trainLimit: Int?

    @Flag(inversion: .prefixedNo, help: "Random 4-pixel shifts and horizontal flips (default: on for CIFAR-10/100, off otherwise).")
    var augment: Bool?

    func config() throws -> DataConfig {
        _ = try format.options()   // refuses bad --labels, --image-size, --resize-filter values
        let kind = try format.kind()?.rawValue ?? DatasetLoader.detectKind(path: data).rawValue
        guard (0..<1).contains(validationFraction) else { throw ValidationError("--validation-fraction must be in [0, 1)") }
        return DataConfig(kind: kind, path: data, validationFraction: validationFraction,
                          augment: augment ?? (kind == DatasetKind.cifar10.rawValue || kind == DatasetKind.cifar100.rawValue),
                          trainLimit: trainLimit, labels: format.labels, imageSize: try format.imageSizeValue(),
                          resizeFilter: format.resizeFilter)
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model; writes a run directory (config, metrics, checkpoints, summary).",
        discussion: """
        Examples:
          strata train --model cnn --filters 32,64 --hidden 128 --epochs 5
          strata train --model resnet20 --data DATA --optimizer sgd \\
              --schedule steps:100,150 --epochs 180
          strata train --resume runs/resnet20    # continue a killed run
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var optimizerOptions: OptimizerOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Epochs to train (default 5; with --resume: the run's own, or this many in all).")
    var epochs: Int?

    @Option(help: "Training batch size.")
    var batchSize: Int = 128

    @Option(help: "Random seed (init, split, shuffling, augmentation, dropout).")
    var seed: UInt64 = 0

    @Option(help: "Run directory (default runs/<model>-s<seed>).")
    var output: String?

    @Option(help: "Continue the run in this directory from its last checkpoint.")
    var resume: String?

    @Flag(help: "Replace the run in --output (its strata files are removed first); without it a non-empty directory is refused.")
    var overwrite = false

    @Option(help: "Rerun the job a config.json describes (a run directory's); --seed replaces its seed, --output, --overwrite, --device, --threads and --strict-fp32 apply, any other flag is refused.")
    var config: String?

    @Option(help: "Copy the first --reuse-layers blocks from this checkpoint or run directory.")
    var reuseFrom: String?

    @Option(help: "Blocks to reuse (cnn: conv layers; resnet: stem + basic blocks; vgg: conv units).")
    var reuseLayers: Int?

    @Flag(help: "Keep the reused prefix frozen or fine-tune it with the rest.")
    var reuseMode: ReuseConfig.Mode = .freeze

    @Flag(inversion: .prefixedNo, help: "Cache the frozen prefix's outputs across epochs (only without augmentation).")
    var cache: Bool = true

    @Option(help: "Host memory for the activation cache, in MiB.")
    var cacheBudget: Int = 4096

    func validate() throws {
        if (reuseFrom == nil) != (reuseLayers == nil) {
            throw ValidationError("--reuse-from and --reuse-layers go together")
        }
        if resume != nil && overwrite { throw ValidationError("--resume and --overwrite exclude each other") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard cacheBudget >= 0 else { throw ValidationError("--cache-budget must be at least 0 MiB, got \(cacheBudget)") }
        guard batchSize > 1 else { throw ValidationError("--batch-size must be at least 2 (batch norm needs two images), got \(batchSize)") }
        if resume != nil && config != nil { throw ValidationError("--resume and --config exclude each other") }
        // A flag the run would not use is refused, never silently ignored.
        if resume != nil {
            try refuseUnusedFlags(with: "--resume", allowed: ["resume", "epochs", "device", "threads", "strict-fp32", "precision"],
                                  why: "a resumed run keeps the settings of its config.json (only --epochs, --device and --threads apply)")
        } else if config != nil {
            try refuseUnusedFlags(with: "--config", allowed: ["config", "seed", "output", "overwrite", "device", "threads", "strict-fp32", "precision"],
                                  why: "the config file sets it (edit a copy of the file instead)")
        }
    }

    /// The images per step this run trains at (a CUDA backend's layout depends on it): the resumed
    /// run's or the config file's (nil when unreadable: the errors come later, with context), else
    /// --batch-size.
    private var trainingBatchSize: Int? {
        if let resume { return (try? ConfigFile.readTrainConfig(RunDirectory(path: resume).configPath))?.batchSize }
        if let config { return (try? ConfigFile.readTrainConfig(config))?.batchSize }
        return batchSize
    }

    /// The precision this run trains in: a resumed run's own (another --precision is refused),
    /// a config file's unless --precision replaces it, else --precision.
    private func trainingPrecision() throws -> Precision {
        if let resume {
            let stored = (try? ConfigFile.readTrainConfig(RunDirectory(path: resume).configPath))?.precision
            return try deviceOptions.runPrecision(continuing: stored, refuseChangeWith: "--resume \(resume)")
        }
        if let config { return try deviceOptions.runPrecision(continuing: (try? ConfigFile.readTrainConfig(config))?.precision) }
        return try deviceOptions.precisionValue
    }

    func run() throws {
        let precision = try trainingPrecision()
        let backend = try orExit { try deviceOptions.makeBackend(batchSize: trainingBatchSize, precision: precision) }
        let run: TrainingRun
        let directory: RunDirectory
        let recorder: RunRecorder
        if let resume {
            directory = RunDirectory(path: resume)
            recorder = try orExit { try openRun(directory, kind: .train, mode: .resume) }
            run = try orExit(configFile: directory.configPath) {
                try TrainingRun.resume(from: recorder, backend: backend, epochs: epochs)
            }
            if let epochs, epochs < run.epoch {
                throw ValidationError("--epochs \(epochs) is fewer than the \(plural(run.epoch, "epoch")) \(resume) has already trained (a run is not shortened)")
            }
            print(run.isFinished ? "\(resume) already has all \(plural(run.config.epochs, "epoch")) (pass --epochs to train longer)"
                  : "resuming \(resume) at epoch \(run.epoch + 1) of \(run.config.epochs) on \(backend.name), \(precision.rawValue)")
        } else if let configPath = config {
            let (config, data) = try orExit { () throws -> (TrainConfig, RunData) in
                var config = try ConfigFile.readTrainConfig(configPath)
                if givenFlags().contains("seed"), seed != config.seed {
                    print("--seed \(seed) replaces the seed \(config.seed) of \(configPath)")
                    config.seed = seed
                }
                if config.precision != precision {
                    print("--precision \(precision.rawValue) replaces the precision \(config.precision.rawValue) of \(configPath)")
                    config.precision = precision
                }
                let data = try RunData.load(config.data, seed: config.seed)
                try ConfigValidation.check(config, data: DataFacts(data), source: .file(configPath))
                return (config, data)
            }
            // The directory is opened (and, with --overwrite, emptied) only once the job is known to be valid.
            directory = RunDirectory(path: output ?? "runs/\(config.modelName)-s\(config.seed)-rerun")
            recorder = try orExit { try openRun(directory, kind: .train, mode: overwrite ? .overwrite : .new) }
            run = try orExit { try TrainingRun(config: config, backend: backend, data: data) }
            print("rerunning \(configPath): \(config.modelName), \(plural(config.epochs, "epoch")), seed \(config.seed)")
        } else {
            let (config, data) = try orExit { () throws -> (TrainConfig, RunData) in
                let dataConfig = try dataOptions.config()
                let data = try RunData.load(dataConfig, seed: seed)
                let shape = ImageShape(channels: data.train.channels, height: data.train.height, width: data.train.width)
                let reuse = reuseFrom.map {
                    ReuseConfig(source: $0, blocks: reuseLayers!, mode: reuseMode, cache: cache, cacheBudget: cacheBudget << 20)
                }
                let config = TrainConfig(modelName: modelOptions.name,
                                         model: try modelOptions.spec(input: shape, classes: data.train.classes),
                                         data: dataConfig, epochs: epochs ?? 5, batchSize: batchSize,
                                         optimizer: try optimizerOptions.config(),
                                         schedule: try optimizerOptions.scheduleConfig(epochs: epochs ?? 5),
                                         seed: seed, device: deviceOptions.device, reuse: reuse, precision: precision)
                try ConfigValidation.check(config, data: DataFacts(data), source: .flags)
                return (config, data)
            }
            directory = RunDirectory(path: output ?? "runs/\(modelOptions.name)-s\(seed)")
            recorder = try orExit { try openRun(directory, kind: .train, mode: overwrite ? .overwrite : .new) }
            run = try orExit { try TrainingRun(config: config, backend: backend, data: data) }
            if let note = run.cacheNote { print(note) }
            if let r = config.reuse {
                print("reusing \(plural(r.blocks, "block")) from \(r.source) (\(r.mode.rawValue))"
                      + (run.cachesPrefix ? ", prefix outputs cached after epoch 1" : ""))
            }
            print("training \(config.modelName) on \(data.train.name) (\(data.train.count) train, "
                  + "\(data.validation?.count ?? 0) validation, \(data.test?.count ?? 0) test) on \(backend.name), \(precision.rawValue)")
        }
        try orExit { try fitAndReport(run, recorder: recorder) }
    }
}

/// Opens a run directory for a command (lock, manifest; see `RunRecorder`) and says what the
/// opening removed: the old run's files (`--overwrite`) and temporaries of killed writes.
func openRun(_ directory: RunDirectory, kind: RunManifest.Kind, mode: RunRecorder.Mode) throws -> RunRecorder {
    let recorder = try RunRecorder(directory, kind: kind, mode: mode)
    if !recorder.removed.isEmpty {
        let names = recorder.removed.prefix(8).joined(separator: ", ") + (recorder.removed.count > 8 ? ", ..." : "")
        print("--overwrite: removed \(recorder.removed.count) files of the old run in \(directory.path): \(names)")
    }
    if !recorder.removedTemporaries.isEmpty {
        print("removed \(recorder.removedTemporaries.count) temporary files of interrupted writes in \(directory.path)")
    }
    return recorder
}

/// Runs `fit` with a progress display and prints the final summary.
func fitAndReport(_ run: TrainingRun, recorder: RunRecorder) throws {
    let directory = recorder.directory
    print(run.model.summary)
    let progress = ProgressDisplay()
    var observer = TrainingObserver()
    let epochs = run.config.epochs
    observer.batch = { epoch, done, total, running in
        progress.batch(prefix: "epoch \(epoch)/\(epochs)", done: done, total: total) {
            let (loss, acc) = running()
            return "loss \(formatFixed(loss, digits: 4)) acc \(formatFixed(acc * 100, digits: 2))%"
        }
    }
    observer.epoch = { m in
        var line = "epoch \(m.epoch)/\(epochs)  loss \(formatFixed(m.trainLoss, digits: 4))  acc \(formatFixed(m.trainAccuracy * 100, digits: 2))%"
        if let vl = m.validationLoss, let va = m.validationAccuracy {
            line += "  val_loss \(formatFixed(vl, digits: 4))  val_acc \(formatFixed(va * 100, digits: 2))%"
        }
        line += "  \(formatFixed(m.seconds, digits: 1))s  \(formatFixed(m.imagesPerSecond, digits: 0)) img/s"
        line += "  lr \(Float(m.learningRate))  \(formatCount(m.cumulativeTrainingFlops))FLOP"
        progress.line(line)
    }
    let summary = try run.fit(recorder: recorder, observer: observer)
    print("")
    print("summary (\(directory.summaryPath))")
    print("  model            \(summary.modelName): \(summary.parameters) parameters, \(formatCount(summary.forwardFlopsPerImage))FLOP forward per image")
    if let best = summary.bestValidationAccuracy, let e = summary.bestEpoch {
        print("  best validation  \(formatFixed(best * 100, digits: 2))% (epoch \(e))")
    }
    if let t = summary.testAccuracy, let l = summary.testLoss {
        let which = summary.testCheckpoint.map { " (\($0), epoch \(summary.testEpoch ?? summary.epochs))" } ?? ""
        var line = "  test             \(formatFixed(t * 100, digits: 2))% accuracy, loss \(formatFixed(l, digits: 4))\(which)"
        if let lt = summary.lastTestAccuracy { line += "; last epoch \(formatFixed(lt * 100, digits: 2))%" }
        print(line)
    }
    print("  training         \(plural(summary.epochs, "epoch")), \(formatFixed(summary.totalSeconds, digits: 1))s, \(formatCount(summary.cumulativeTrainingFlops))FLOP")
    print("  precision        " + precisionLine(run))
    print("  checkpoints      " + checkpointsLine(recorder))
}

extension ReuseConfig.Mode: EnumerableFlag {}

/// "bf16 (convolutions and GEMMs; weights FP32)", with fp16's loss scale and skipped steps.
func precisionLine(_ run: TrainingRun) -> String {
    let p = run.backend.precision
    var line = p == .fp32 ? "fp32" : "\(p.rawValue) (convolutions and GEMMs; weights and checkpoints FP32)"
    if let scaler = run.lossScaler {
        let skipped = run.history.compactMap(\.skippedSteps).reduce(0, +)
        line += ", loss scale 2^\(scaler.scale.exponent), \(plural(skipped, "step")) skipped"
    }
    return line
}

/// "last epoch 5 (runs/x/epoch-0005.safetensors), best epoch 4 (...)", from the manifest.
func checkpointsLine(_ recorder: RunRecorder) -> String {
    let m = recorder.manifest
    var parts: [String] = []
    if let l = m.last { parts.append("last epoch \(l.epoch) (\(recorder.directory.path)/\(l.file))") }
    if let b = m.best { parts.append("best epoch \(b.epoch) (\(recorder.directory.path)/\(b.file))") }
    return (parts.isEmpty ? ["none"] : parts).joined(separator: ", ") + "; see \(recorder.directory.manifestPath)"
}
