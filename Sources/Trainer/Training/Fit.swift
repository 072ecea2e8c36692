import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension TrainingRun {
    /// Runs the remaining epochs in an open run directory: `config.json` first (a new run), then
    /// per epoch a `metrics.jsonl` line and a checkpoint committed through `recorder` (which
    /// names it last, and best when validation accuracy improved, in `manifest.json`), and
    /// finally the test evaluation and `summary.json`. A run killed at any point resumes from
    /// its directory (`resume(from:backend:)`). A diverged loss stops the run with a
    /// `DivergenceError` naming the last good checkpoint; nothing of the diverged epoch is written.
    /// SIGINT/SIGTERM (`Interruption`) stops it before the next step with an `InterruptedError`
    /// and the manifest `interrupted`, its last checkpoint the one `--resume` continues from.
    @discardableResult
    public func fit(recorder: RunRecorder, observer: TrainingObserver = TrainingObserver()) throws -> RunSummary {
        let directory = recorder.directory
        if recorder.manifest.last == nil || !directory.exists(directory.configPath) {
            try directory.writeJSON(config, to: directory.configPath)
        }
        let start = monotonicNow()
        do {
            while !isFinished {
                let metrics = try trainEpoch(observer: observer)
                let file = try checkpoint()
                try recorder.appendMetrics(metrics)
                try recorder.commit(file, epoch: epoch, best: bestEpoch == epoch,
                                    validationAccuracy: metrics.validationAccuracy)
            }
        } catch let error as DivergenceError {
            throw recorder.diverged(error)
        } catch let error as InterruptedError {
            throw recorder.interrupted(error)
        }
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

    /// The summary of the run so far, with a test-set evaluation when there is a test set: of the
    /// best checkpoint `best` when it is given (the model's weights are swapped for its and then
    /// back for those of `last`, the checkpoint of the current epoch), so that the summary and
    /// `strata eval` report the same checkpoint; the last epoch's figures go beside them.
    public func summarize(seconds: Double, best: (path: String, epoch: Int)? = nil, last: String? = nil) throws -> RunSummary {
        let lastTest = try data.test.map { try evaluate($0) }
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
                               epochs: Int?) throws -> TrainingRun {
        guard directory.exists(directory.configPath) else {
            throw RunDirectoryError(path: directory.configPath, reason: "is missing: not a strata run directory")
        }
        var config = try directory.readJSON(TrainConfig.self, from: directory.configPath)
        if let epochs { config.epochs = epochs }
        let data = try RunData.load(config.data, seed: config.seed)
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
