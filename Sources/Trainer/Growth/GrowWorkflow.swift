import GPUTensor

/// What a grow run shows while it runs (the CLI's progress lines); all optional.
public struct GrowDisplay {
    /// Batch progress of the grow run and of its baseline.
    public var observer = TrainingObserver()
    /// Every epoch of the grow run, look-ahead ones included.
    public var epoch: (GrowEpoch) -> Void = { _ in }
    /// Every epoch of the baseline.
    public var baselineEpoch: (EpochMetrics) -> Void = { _ in }
    /// Insertions and resume notes, one line each.
    public var line: (String) -> Void = { _ in }
    /// The baseline's heading, before it starts.
    public var heading: (String) -> Void = { _ in }

    public init() {}
}

/// What a finished grow run reports (also in its `summary.json`).
public struct GrowResult {
    public var summary: GrowSummary
    public var history: [GrowEpoch]
    public var model: Model
    /// With `--baseline`: the full network trained from scratch under the same budget.
    public var baseline: RunSummary?
    public var baselineValidationAccuracy: Double?
}

/// The whole `strata grow` job in an open run directory: `config.json`, the grow schedule
/// through the fit loop (`Grower`; a metrics line per epoch, a checkpoint after every training
/// epoch), the baseline in `baseline/` (an ordinary run directory), and `summary.json` with
/// `growth.svg` (`GrowthReport`). Run again on a directory it left unfinished (the recorder
/// opened with `.resume`) it continues from the last checkpoint, baseline included, and ends as
/// an uninterrupted run would.
public enum GrowWorkflow {
    public static func run(_ config: GrowConfig, data: RunData, backend: Backend, recorder: RunRecorder,
                           display: GrowDisplay = GrowDisplay()) throws -> GrowResult {
        let directory = recorder.directory
        let resumeFrom = recorder.lastCheckpointPath
        if resumeFrom == nil {
            try directory.writeJSON(config, to: directory.configPath)
            try recorder.replaceMetrics([GrowEpoch]())
        }
        let grower = Grower(config: config, backend: backend, data: data)
        grower.epochDone = display.epoch
        grower.event = display.line
        let (summary, model) = try grower.run(recorder: recorder, resume: resumeFrom,
                                              hooks: FitHooks(observer: display.observer)) { history, done in
            // metrics.jsonl back to the checkpoint's epochs (look-ahead lines after it are redone).
            try recorder.replaceMetrics(history)
            let epochs = history.last?.epoch ?? 0
            display.line(done ? "\(directory.path): the grow run is complete (\(plural(epochs, "epoch")))"
                              : "resuming \(directory.path) after epoch \(epochs) of \(config.maxEpochs) on \(backend.name)")
        }

        var series = [GrowthReport.series(summary, history: grower.history)]
        var result = GrowResult(summary: summary, history: grower.history, model: model)
        if config.baseline == true {
            display.heading("\nbaseline: the full network from scratch for \(plural(config.maxEpochs, "epoch"))")
            var c = config.train
            c.epochs = config.maxEpochs
            let baseDirectory = RunDirectory(path: directory.path + "/baseline")
            let resumeBaseline = resumeFrom != nil && baseDirectory.exists(baseDirectory.configPath)
            let run = resumeBaseline
                ? try TrainingRun.resume(from: baseDirectory, backend: backend)
                : try TrainingRun(config: c, backend: backend, data: data)
            if run.epoch > 0 { display.line("resuming the baseline after epoch \(run.epoch)") }
            var observer = display.observer
            observer.epoch = display.baselineEpoch
            do {
                result.baseline = try run.fit(in: baseDirectory, mode: resumeBaseline ? .resume : .new, observer: observer)
            } catch let error as InterruptedError {
                // The grow run is what `--resume` continues (its baseline with it).
                throw recorder.interrupted(InterruptedError(signal: error.signal))
            }
            result.baselineValidationAccuracy = run.history.last?.validationAccuracy
            series.append(GrowthReport.baselineSeries(run.history, inferenceFlops: run.model.cost.forward))
        }
        let report = GrowthReport(config: config, grow: summary, baseline: result.baseline)
        try report.write(to: directory, series: series,
                         title: "\(config.train.modelName) incremental training on \(config.train.data.kind ?? data.train.name)")
        try recorder.complete()
        return result
    }
}
