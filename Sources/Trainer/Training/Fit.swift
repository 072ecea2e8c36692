import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension TrainingRun {
    /// Runs the remaining epochs in an open run directory through the fit loop (`FitLoop`):
    /// `config.json` first (a new run), then per epoch a `metrics.jsonl` line and a checkpoint
    /// committed through `recorder` (which names it last, and best when validation accuracy
    /// improved, in `manifest.json`), and finally the test evaluation and `summary.json`. A run
    /// killed at any point resumes from its directory (`resume(from:backend:)`). A diverged loss
    /// stops the run with a `DivergenceError` naming the last good checkpoint; nothing of the
    /// diverged epoch is written. SIGINT/SIGTERM (`Interruption`) stops it before the next step
    /// with an `InterruptedError` and the manifest `interrupted`, its last checkpoint the one
    /// `--resume` continues from.
    @discardableResult
    public func fit(recorder: RunRecorder, observer: TrainingObserver = TrainingObserver()) throws -> RunSummary {
        guard let summary = try fit(recorder: recorder, until: nil, hooks: FitHooks(observer: observer)) else {
            preconditionFailure("a fit without a segment end always finishes")
        }
        return summary
    }

    /// `fit(recorder:)` up to epoch `until` (nil: the whole budget): a segment. Below the last
    /// epoch every epoch is committed but the run is left incomplete (nil is returned) and a later
    /// call, in this process or after `resume`, continues it bit-identical to a run never stopped;
    /// at the end (the budget, or a stop from `hooks.stop`) `summary.json` is written, the run
    /// completed and its summary returned.
    @discardableResult
    public func fit(recorder: RunRecorder, until: Int?, hooks: FitHooks = FitHooks()) throws -> RunSummary? {
        let directory = recorder.directory
        if recorder.manifest.last == nil || !directory.exists(directory.configPath) {
            try directory.writeJSON(config, to: directory.configPath)
        }
        let start = monotonicNow()
        guard try FitLoop(run: self, recorder: recorder, hooks: hooks).train(until: until) else { return nil }
        let best = recorder.manifest.best.map { (path: FileSystem.join(directory.path, $0.file), epoch: $0.epoch) }
        let summary = try summarize(seconds: monotonicNow() - start, best: best, last: recorder.lastCheckpointPath)
        try directory.writeJSON(summary, to: directory.summaryPath)
        try recorder.complete()
        return summary
    }

    /// `fit(recorder:)` in `directory`, opened for the time of the call: as a new run (the
    /// directory must be empty) when nothing is trained yet, else resumed; or as `mode` says.
    @discardableResult
    public func fit(in directory: RunDirectory, mode: RunRecorder.Mode? = nil,
                    observer: TrainingObserver = TrainingObserver()) throws -> RunSummary {
        let recorder = try RunRecorder(directory, kind: .train, mode: mode ?? (epoch > 0 ? .resume : .new))
        defer { recorder.close() }
        return try fit(recorder: recorder, observer: observer)
    }

    /// One segment of a run in `directory` (see `fit(recorder:until:hooks:)`): the directory is
    /// opened as a new run when it holds no `config.json`, else resumed from its last checkpoint
    /// with the config it holds (which wins over `config`). `testSet: false` drops the test set
    /// (an hpo trial chooses on validation alone). Returns the run, and its summary once it ended.
    public static func fitSegment(in directory: RunDirectory, config: TrainConfig, backend: Backend,
                                  until: Int?, testSet: Bool = true,
                                  hooks: FitHooks = FitHooks()) throws -> (run: TrainingRun, summary: RunSummary?) {
        let resuming = directory.exists(directory.configPath)
        let recorder = try RunRecorder(directory, kind: .train, mode: resuming ? .resume : .new)
        defer { recorder.close() }
        let run = try resuming ? resume(recorder.directory, checkpoint: recorder.lastCheckpointPath, backend: backend,
                                        epochs: nil, testSet: testSet)
                               : TrainingRun(config: config, backend: backend,
                                             data: RunData.load(config.data, seed: config.seed, testSet: testSet))
        return (run, try run.fit(recorder: recorder, until: until, hooks: hooks))
    }

    /// The summary of the run so far, with a test-set evaluation when there is a test set: of the
    /// best checkpoint `best` when it is given (the model's weights are swapped for its and then
    /// back for those of `last`, the checkpoint of the current epoch), so that the summary and
    /// `strata eval` report the same checkpoint; the last epoch's figures go beside them.
    public func summarize(seconds: Double, best: (path: String, epoch: Int)? = nil, last: String? = nil) throws -> RunSummary {
        let bestIsAnother = best.map { $0.epoch != epoch } ?? false
        let lastTest = testsLastEpoch || !bestIsAnother || last == nil ? try data.test.map { try evaluate($0) } : nil
        var test = lastTest
        var testCheckpoint = "last", testEpoch = epoch
        if let best, best.epoch != epoch, let last, let testSet = data.test {
            try ModelState.load(model, from: try SafeTensors.read(from: best.path), path: best.path)
            test = try evaluate(testSet)
            try ModelState.load(model, from: try SafeTensors.read(from: last), path: last)
            (testCheckpoint, testEpoch) = ("best", best.epoch)
        } else if let best, best.epoch == epoch {
            testCheckpoint = "best"
        }
        let run = history.last
        return RunSummary(
            modelName: config.modelName, parameters: model.parameterCount,
            trainableParameters: model.trainableParameterCount, forwardFlopsPerImage: model.cost.forward,
            epochs: epoch, device: backend.device.description, bestEpoch: bestEpoch,
            bestValidationAccuracy: bestValidationAccuracy, finalTrainLoss: run?.trainLoss ?? .nan,
            finalTrainAccuracy: run?.trainAccuracy ?? .nan, testLoss: test?.loss, testAccuracy: test?.accuracy,
            testCheckpoint: test == nil ? nil : testCheckpoint, testEpoch: test == nil ? nil : testEpoch,
            lastTestLoss: testCheckpoint == "best" && testEpoch != epoch ? lastTest?.loss : nil,
            lastTestAccuracy: testCheckpoint == "best" && testEpoch != epoch ? lastTest?.accuracy : nil,
            totalSeconds: history.reduce(0) { $0 + $1.seconds }, cumulativeTrainingFlops: cumulativeFlops,
            skippedFlops: skippedFlops, flops: ledger.snapshot())
    }

    /// Reopens a run directory written by `fit`: its config, data and last checkpoint (the
    /// manifest's; `last.safetensors` in a directory from before manifests).
    /// `epochs` extends (or shortens) the run.
    public static func resume(from directory: RunDirectory, backend: Backend, epochs: Int? = nil) throws -> TrainingRun {
        let last: String?
        if directory.exists(directory.manifestPath) {
            let manifest = try directory.readJSON(RunManifest.self, from: directory.manifestPath)
            last = manifest.last.map { FileSystem.join(directory.path, $0.file) }
        } else {
            last = directory.exists(directory.lastCheckpointPath) ? directory.lastCheckpointPath : nil
        }
        return try resume(directory, checkpoint: last, backend: backend, epochs: epochs)
    }

    /// `resume(from:)` of a directory opened with `RunRecorder` (mode `.resume`), whose lock
    /// the caller holds while it reads.
    public static func resume(from recorder: RunRecorder, backend: Backend, epochs: Int? = nil) throws -> TrainingRun {
        try resume(recorder.directory, checkpoint: recorder.lastCheckpointPath, backend: backend, epochs: epochs)
    }

    private static func resume(_ directory: RunDirectory, checkpoint: String?, backend: Backend,
                               epochs: Int?, testSet: Bool = true) throws -> TrainingRun {
        guard directory.exists(directory.configPath) else {
            throw RunDirectoryError(path: directory.configPath, reason: "is missing: not a strata run directory")
        }
        var config = try directory.readJSON(TrainConfig.self, from: directory.configPath)
        if let epochs { config.epochs = epochs }
        let data = try RunData.load(config.data, seed: config.seed, testSet: testSet)
        let run = try TrainingRun(config: config, backend: backend, data: data)
        if let checkpoint {
            try run.restore(from: checkpoint)
            run.history = try directory.readMetrics().prefix(run.epoch).map { $0 }
        }
        return run
    }
}

extension RunDirectory {
    /// The epochs recorded in `metrics.jsonl`.
    public func readMetrics() throws -> [EpochMetrics] {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return [] }
        let decoder = RunDirectory.decoder
        return try data.split(separator: 0x0A).enumerated().map { i, line in
            do { return try decoder.decode(EpochMetrics.self, from: Data(line)) } catch let error as DecodingError {
                throw RunDirectoryError(path: metricsPath, reason: "line \(i + 1) is not valid: \(describe(error))")
            } catch {
                throw RunDirectoryError(path: metricsPath, reason: "line \(i + 1) is not valid: \(error)")
            }
        }
    }
}
