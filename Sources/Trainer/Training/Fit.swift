import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension TrainingRun {
    /// Runs the remaining epochs, writing the run directory as it goes: `config.json` first,
    /// then per epoch a `metrics.jsonl` line and `last.safetensors` (and `best.safetensors` when
    /// validation accuracy improves), and finally the test evaluation and `summary.json`.
    /// A run killed at any point resumes from its directory (`resume(from:backend:)`).
    @discardableResult
    public func fit(in directory: RunDirectory, observer: TrainingObserver = TrainingObserver()) throws -> RunSummary {
        try directory.create()
        if !directory.exists(directory.configPath) || epoch == 0 {
            try directory.writeJSON(config, to: directory.configPath)
        }
        try directory.truncateMetrics(toEpochs: epoch)
        if epoch == 0, directory.exists(directory.metricsPath) { try directory.clearMetrics() }
        let start = monotonicNow()
        while !isFinished {
            let metrics = try trainEpoch(observer: observer)
            try directory.appendMetrics(metrics)
            let file = try checkpoint()
            try file.write(to: directory.lastCheckpointPath)
            if bestEpoch == epoch { try file.write(to: directory.bestCheckpointPath) }
        }
        let summary = try summarize(seconds: monotonicNow() - start)
        try directory.writeJSON(summary, to: directory.summaryPath)
        return summary
    }

    /// The summary of the run so far, with a test-set evaluation when there is a test set.
    public func summarize(seconds: Double) throws -> RunSummary {
        let test = try data.test.map { try evaluate($0) }
        let last = history.last
        return RunSummary(
            modelName: config.modelName, parameters: model.parameterCount,
            trainableParameters: model.trainableParameterCount, forwardFlopsPerImage: model.cost.forward,
            epochs: epoch, device: backend.device.description, bestEpoch: bestEpoch,
            bestValidationAccuracy: bestValidationAccuracy, finalTrainLoss: last?.trainLoss ?? .nan,
            finalTrainAccuracy: last?.trainAccuracy ?? .nan, testLoss: test?.loss, testAccuracy: test?.accuracy,
            totalSeconds: history.reduce(0) { $0 + $1.seconds }, cumulativeTrainingFlops: cumulativeFlops,
            skippedFlops: skippedFlops, flops: ledger.snapshot())
    }

    /// Reopens a run directory written by `fit`: its config, data and last checkpoint.
    /// `epochs` extends (or shortens) the run.
    public static func resume(from directory: RunDirectory, backend: Backend, epochs: Int? = nil) throws -> TrainingRun {
        guard directory.exists(directory.configPath) else {
            throw RunDirectoryError(path: directory.configPath, reason: "is missing: not a strata run directory")
        }
        var config = try directory.readJSON(TrainConfig.self, from: directory.configPath)
        if let epochs { config.epochs = epochs }
        let data = try RunData.load(config.data, seed: config.seed)
        let run = try TrainingRun(config: config, backend: backend, data: data)
        if directory.exists(directory.lastCheckpointPath) {
            try run.restore(from: directory.lastCheckpointPath)
            run.history = try directory.readMetrics().prefix(run.epoch).map { $0 }
        }
        return run
    }
}

extension RunDirectory {
    /// The epochs recorded in `metrics.jsonl`.
    public func readMetrics() throws -> [EpochMetrics] {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return [] }
        let decoder = JSONDecoder()
        return try data.split(separator: 0x0A).enumerated().map { i, line in
            do { return try decoder.decode(EpochMetrics.self, from: Data(line)) } catch {
                throw RunDirectoryError(path: metricsPath, reason: "line \(i + 1) is not valid: \(error)")
            }
        }
    }
}
