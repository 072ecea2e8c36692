import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a checkpoint's metadata records besides the tensors.
struct CheckpointInfo: Codable {
    var format = "strata-checkpoint-1"
    var epoch: Int
    var optimizerSteps: Int
    var dropoutCounter: UInt64
    var seed: UInt64
    var normalizationMean: [Float]
    var normalizationStd: [Float]
    var bestEpoch: Int?
    var bestValidationAccuracy: Double?
    var flops: FlopSnapshot
    /// Dynamic loss scaling's state (fp16 runs): the scale and good steps since it changed.
    var lossScale: Float? = nil
    var lossScaleGoodSteps: Int? = nil
}

extension TrainingRun {
    /// The run's state as safetensors: the model under PyTorch names, optimizer state under
    /// `optimizer.<parameter>.<slot>`, and metadata `strata` (epoch, RNG, normalisation),
    /// `config` (the TrainConfig) and `model` (the ModelSpec), each a JSON string.
    public func checkpoint() throws -> SafeTensors {
        var file = SafeTensors()
        try ModelState.append(model, to: &file, batchesTracked: optimizer.stepCount)
        for (name, tensor) in optimizer.namedState() {
            file.append("optimizer." + name, shape: tensor.shape, floats: try backend.download(tensor))
        }
        let info = CheckpointInfo(epoch: epoch, optimizerSteps: optimizer.stepCount, dropoutCounter: model.dropoutCounter,
                                  seed: config.seed, normalizationMean: normalization.mean,
                                  normalizationStd: normalization.std, bestEpoch: bestEpoch,
                                  bestValidationAccuracy: bestValidationAccuracy,
                                  flops: ledger.snapshot(), lossScale: lossScaler?.scale,
                                  lossScaleGoodSteps: lossScaler?.goodSteps)
        // A diverged state is never written as if it were a checkpoint.
        for entry in file.tensors where !entry.name.hasPrefix("optimizer.") {
            if case .float32(let values) = entry.values, values.contains(where: { !$0.isFinite }) {
                throw DivergenceError(epoch: epoch, batch: nil, what: "non-finite weights (\(entry.name))")
            }
        }
        file.metadata = [
            "strata": try jsonString(info),
            "config": try jsonString(config),
            "model": try jsonString(config.model),
        ]
        return file
    }

    /// Writes `checkpoint()` to `path` atomically.
    public func saveCheckpoint(to path: String) throws {
        try checkpoint().write(to: path)
    }

    /// Restores model, optimizer, epoch and RNG counters from a checkpoint written by `saveCheckpoint`.
    public func restore(from path: String) throws {
        let file = try SafeTensors.read(from: path)
        let info = try decodeJSON(CheckpointInfo.self, file.metadata["strata"], file: path, key: "strata")
        try ModelState.load(model, from: file, path: path)
        let params = model.trainableParameters.map { (name: $0.name, value: $0.value) }
        try optimizer.restore(stepCount: info.optimizerSteps, parameters: params) { name in
            file["optimizer." + name] == nil ? nil : try file.floats("optimizer." + name, file: path)
        }
        model.dropoutCounter = info.dropoutCounter
        epoch = info.epoch
        bestEpoch = info.bestEpoch
        bestValidationAccuracy = info.bestValidationAccuracy
        ledger = FlopLedger(restoring: info.flops)
        if let scaler = lossScaler, let scale = info.lossScale, scale > 0, scale.isFinite {
            lossScaler = LossScaler(scale: scale, growthInterval: scaler.growthInterval,
                                    goodSteps: max(0, info.lossScaleGoodSteps ?? 0))
        }
    }

    /// Normalisation statistics stored in a checkpoint (for evaluating it on other data).
    public static func normalization(in file: SafeTensors, path: String) throws -> (mean: [Float], std: [Float]) {
        let info = try decodeJSON(CheckpointInfo.self, file.metadata["strata"], file: path, key: "strata")
        let channels = try decodeJSON(ModelSpec.self, file.metadata["model"], file: path, key: "model").input.channels
        try ConfigValidation.checkNormalization(mean: info.normalizationMean, std: info.normalizationStd,
                                                channels: channels, source: .checkpoint(path, key: "strata"))
        return (info.normalizationMean, info.normalizationStd)
    }
}

extension TrainingRun {
    /// A run that holds a checkpoint's model, ready to `evaluate` the test set of `dataPath`
    /// (default: the dataset it was trained on), normalised with the checkpoint's statistics.
    public static func forEvaluation(checkpoint path: String, dataPath: String?, backend: Backend,
                                     batchSize: Int) throws -> TrainingRun {
        let file = try SafeTensors.read(from: path)
        var config = try decodeJSON(TrainConfig.self, file.metadata["config"], file: path, key: "config")
        try ConfigValidation.check(config, source: .checkpoint(path, key: "config"))
        if let dataPath {
            config.data.path = dataPath
            config.data.kind = nil
        }
        config.evalBatchSize = batchSize
        // Evaluation runs in whatever precision the backend computes (the weights are FP32).
        config.precision = backend.precision
        // Only evaluation runs: a small test set must not fail the training loader's batch checks.
        config.batchSize = max(2, min(config.batchSize, batchSize))
        config.data.dropLastBatch = false
        let kind = try config.data.kind.flatMap(DatasetKind.init(rawValue:)) ?? DatasetLoader.detectKind(path: config.data.path)
        let (_, test) = try DatasetLoader.load(kind: kind, path: config.data.path, options: DatasetOptions(config.data))
        guard test.imageShape == config.model.input.dims, test.classes == config.model.classes else {
            throw TrainingError("\(config.data.path) has \(test.imageShape) images in \(test.classes) classes; "
                                + "the checkpoint's model takes \(config.model.input.dims) in \(config.model.classes)")
        }
        let run = try TrainingRun(config: config, backend: backend,
                                  data: RunData(train: test, validation: nil, test: test),
                                  normalization: normalization(in: file, path: path))
        try ModelState.load(run.model, from: file, path: path)
        return run
    }
}
