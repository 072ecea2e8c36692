import GPUTensor

// Epochs whose steps are computed outside the run: a trial group (Groups/GroupJob.swift) trains
// its members' networks fused, then hands each member's losses and logits back to the member's
// own `TrainingRun`, which counts them exactly as `trainEpoch` does (the same statistics, FLOP
// ledger, validation, divergence checks and history), so the member's run directory is an
// ordinary one and `FitLoop`'s checkpoints, `summarize` and `resume` work on it unchanged.
// Only the plain path is mirrored: no frozen-prefix cache (such trials are never grouped).

/// An epoch of a `TrainingRun` in progress whose steps someone else computes.
public struct ExternalEpoch {
    let index: Int
    let start: Double
    let before: FlopSnapshot
    let slots: [FlopLedger.Slot]
    let costs: [StageStepCost]
    let optimizerSlot: FlopLedger.Slot
    var learningRate: Float = 0
}

extension TrainingRun {
    /// Starts epoch `epoch + 1`: resets the training statistics and notes the ledger.
    public func beginExternalEpoch() -> ExternalEpoch {
        let costs = model.stageStepCosts()
        let slots = costs.map { ledger.slot(for: $0.key) }
        let optimizerSlot = ledger.slot(for: "optimizer")
        trainStatistics.reset()
        return ExternalEpoch(index: epoch, start: monotonicNow(), before: ledger.snapshot(), slots: slots,
                             costs: costs, optimizerSlot: optimizerSlot)
    }

    /// The learning rate of batch `batch` of epoch `epoch` (0-based), as `trainEpoch` computes it.
    public func learningRate(epoch: Int, batch: Int) -> Float {
        config.schedule.rate(base: config.optimizer.learningRate,
                             progress: Double(epoch) + Double(batch) / Double(trainLoader.batchesPerEpoch))
    }

    /// Records one step computed outside: the batch's per-image losses (N), logits (N, K) and
    /// labels (N), and the learning rate the step used.
    public func recordExternalStep(_ e: inout ExternalEpoch, losses: Tensor, logits: Tensor, labels: Tensor,
                                   learningRate: Float) throws {
        try trainStatistics.record(losses: losses, logits: logits, labels: labels)
        e.learningRate = learningRate
        let images = Double(losses.shape[0])
        for (k, c) in e.costs.enumerated() {
            ledger.add(.forward, images * c.performed.forward, slot: e.slots[k])
            ledger.add(.backwardData, images * c.performed.backwardData, slot: e.slots[k])
            ledger.add(.backwardWeights, images * c.performed.backwardWeight, slot: e.slots[k])
            ledger.skip(.frozenBackward, images * (c.skipped.backwardData + c.skipped.backwardWeight), slot: e.slots[k])
        }
        ledger.add(.optimizer, optimizer.flops(parameterCount: model.trainableParameterCount), slot: e.optimizerSlot)
    }

    /// Ends the epoch once the model holds its weights: folds the statistics (a non-finite loss
    /// throws `DivergenceError`, nothing recorded), evaluates on the validation set, appends the
    /// metrics to `history` and returns them, as `trainEpoch` does.
    @discardableResult
    public func endExternalEpoch(_ e: ExternalEpoch) throws -> EpochMetrics {
        let stats = trainStatistics
        try stats.fold()
        try backend.synchronize()
        if let bad = stats.firstNonFiniteBatch {
            throw DivergenceError(epoch: e.index + 1, batch: bad + 1, what: "non-finite loss")
        }
        let lossSum = stats.lossSum, correct = stats.correctCount, seen = stats.images
        let trainSeconds = monotonicNow() - e.start
        let validation = try data.validation.map { try evaluate($0) }
        if let v = validation, !v.loss.isFinite {
            throw DivergenceError(epoch: e.index + 1, batch: nil, what: "non-finite validation loss")
        }
        let flops = EpochFlops(from: e.before, to: ledger.snapshot())
        epoch = e.index + 1
        let metrics = EpochMetrics(
            epoch: epoch, learningRate: Double(e.learningRate), trainLoss: lossSum / Double(max(seen, 1)),
            trainAccuracy: Double(correct) / Double(max(seen, 1)),
            validationLoss: validation?.loss, validationAccuracy: validation?.accuracy,
            seconds: monotonicNow() - e.start, imagesPerSecond: Double(seen) / trainSeconds,
            trainingFlops: flops.epoch.executed, cumulativeTrainingFlops: cumulativeFlops,
            skippedFlops: flops.epoch.skipped, flops: flops.epoch)
        if let acc = validation?.accuracy, acc > (bestValidationAccuracy ?? -1) {
            bestValidationAccuracy = acc
            bestEpoch = epoch
        }
        history.append(metrics)
        return metrics
    }

    /// The run in `recorder`'s directory continued from its last checkpoint (a new run when it
    /// has none), with or without its test set, as `fitSegment` opens it.
    static func reopen(_ recorder: RunRecorder, config fresh: TrainConfig?, backend: Backend, testSet: Bool) throws -> TrainingRun {
        let directory = recorder.directory
        guard let config = try directory.exists(directory.configPath)
                ? directory.readJSON(TrainConfig.self, from: directory.configPath) : fresh else {
            throw RunDirectoryError(path: directory.configPath, reason: "is missing: not a strata run directory")
        }
        let run = try TrainingRun(config: config, backend: backend,
                                  data: RunData.load(config.data, seed: config.seed, testSet: testSet))
        if let checkpoint = recorder.lastCheckpointPath {
            try run.restore(from: checkpoint)
            run.history = try directory.readMetrics().prefix(run.epoch).map { $0 }
        }
        return run
    }
}
