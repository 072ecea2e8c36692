import GPUTensor
#if canImport(Glibc)
import Glibc
#endif

/// Train and evaluation data of a run, already split.
public struct RunData {
    public var train: ImageDataset
    public var validation: ImageDataset?
    public var test: ImageDataset?

    public init(train: ImageDataset, validation: ImageDataset?, test: ImageDataset?) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    /// Reads `config.path`, holds out the seeded validation split and applies `trainLimit`.
    /// `testSet: false` leaves the test set out (a run that chooses on validation alone).
    public static func load(_ config: DataConfig, seed: UInt64, testSet: Bool = true) throws -> RunData {
        let kind = try config.kind.map { name -> DatasetKind in
            guard let k = DatasetKind(rawValue: name) else {
                throw DatasetError(.unrecognizedLayout, file: config.path,
                                   "unknown dataset kind '\(name)' (use \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return k
        }
        var (train, test): (ImageDataset, ImageDataset?) = try DatasetLoader.load(kind: kind, path: config.path,
                                                                                   options: DatasetOptions(config))
        if !testSet { test = nil }
        if let limit = config.trainLimit, limit < train.count {
            train = train.subset(Array(Shuffle.permutation(count: train.count, seed: seed, counter: 0x4C49_4D49_54)
                .prefix(limit)).sorted(), name: train.name)
        }
        guard config.validationFraction > 0 else { return RunData(train: train, validation: nil, test: test) }
        let (t, v) = train.split(validationFraction: config.validationFraction, seed: seed)
        return RunData(train: t, validation: v, test: test)
    }
}

/// Callbacks for progress display; all optional.
public struct TrainingObserver {
    /// (epoch (1-based), batch done, batches per epoch, running mean loss and accuracy).
    /// The last argument reads the device's per-batch sums back (a host sync): call it only when
    /// the display redraws, not per batch.
    public var batch: (Int, Int, Int, _ running: () -> (loss: Double, accuracy: Double)) -> Void = { _, _, _, _ in }
    public var epoch: (EpochMetrics) -> Void = { _ in }
    public init() {}
}

/// Loss and accuracy over a dataset.
public struct Evaluation: Codable, Equatable, Sendable {
    public var loss: Double
    public var accuracy: Double
    public var count: Int
}

/// One training job: a model, its optimizer and data on a backend, and the epoch loop.
///
/// A step is explicit (ARCHITECTURE.md, decision 1): upload the batch, augment and normalise on
/// the device, forward, fused softmax cross-entropy, backward down to the first trainable layer,
/// optimizer update. All device buffers are allocated once, in `init`.
public final class TrainingRun {
    public let config: TrainConfig
    public let backend: Backend
    public let model: Model
    public let optimizer: Optimizer
    public let data: RunData
    /// Per-channel statistics of the training images (saved with checkpoints for evaluation).
    public let normalization: (mean: [Float], std: [Float])

    /// Completed epochs.
    public internal(set) var epoch = 0
    /// FLOPs executed and skipped since the run began, by stage and phase.
    public internal(set) var ledger = FlopLedger()
    public var cumulativeFlops: Double { ledger.executedTotal }
    public var skippedFlops: Double { ledger.skippedTotal }
    public internal(set) var bestValidationAccuracy: Double?
    public internal(set) var bestEpoch: Int?
    public internal(set) var history: [EpochMetrics] = []
    /// Dynamic loss scaling (LossScaler.swift): on when the backend's precision needs it (fp16);
    /// a test may set one on any run (an FP32 run scaled by a power of two trains to the same bits).
    public var lossScaler: LossScaler?
    /// Whether the summary also evaluates the last epoch's weights on the test set when the best
    /// checkpoint is another epoch's (`strata train` shows both). A search trial reports only its
    /// best checkpoint's test figures, as the Ray Tune yardstick does: one test pass, not two.
    public var testsLastEpoch = true
    /// One slot per trainable tensor for the scaler's finiteness check (allocated on first use).
    var gradientSums: Tensor?

    let trainLoader: BatchLoader
    let maxBatch: Int
    // Device buffers, (maxBatch, ...) each; smaller batches use slices.
    let rawImages: Tensor      // (N, C, H, W) as uploaded, in [0, 1]
    let images: Tensor         // (N, C, H, W) augmented and normalised
    let labels: Tensor         // (N)
    let losses: Tensor         // (N)
    let gradLogits: Tensor     // (N, K)
    /// Per-batch loss sums and correct counts on the device: one slot per training batch, and
    /// a fixed number for evaluation (read back whenever full).
    let trainStatistics: BatchStatistics
    let evaluationStatistics: BatchStatistics
    /// Outputs of the frozen prefix across epochs, when it can be cached (see `ActivationCache`).
    let cache: ActivationCache?
    let cachedFeatures: Tensor?   // (N, featureShape...)
    /// Whether the frozen prefix's outputs are cached across epochs.
    public var cachesPrefix: Bool { cache != nil }
    /// Why the prefix is not cached, when it is frozen but not cached (for the log).
    public let cacheNote: String?

    /// Seeds of the run's random streams, derived from `config.seed`.
    var augmentSeed: UInt64 { config.seed ^ 0x4155_474D_454E_5400 }

    /// Builds the model (initialised from `config.seed`) or takes `model` as it is (reuse and
    /// growth pass prepared models), and allocates every buffer.
    public init(config: TrainConfig, backend: Backend, data: RunData, model: Model? = nil,
                normalization: (mean: [Float], std: [Float])? = nil) throws {
        // Every way in (flags, --config, resume, a checkpoint) meets the same checks before
        // anything is allocated; callers that know the source have already named it.
        try ConfigValidation.check(config, data: DataFacts(data), normalization: normalization, source: .unnamed)
        // A run keeps one precision: its weights were trained with it, and a resumed run
        // continues bit-identical only in it.
        guard config.precision == backend.precision else {
            throw TrainingError("the run trains in \(config.precision.rawValue) (config.json precision) but the backend "
                                + "computes in \(backend.precision.rawValue): use --precision \(config.precision.rawValue)")
        }
        self.config = config
        lossScaler = backend.precision.needsLossScaling ? LossScaler() : nil
        self.backend = backend
        self.data = data
        let model = try model ?? Model(spec: config.model)
        self.model = model
        precondition(model.inputShape == data.train.imageShape,
                     "model input \(model.inputShape) vs images \(data.train.imageShape)")
        maxBatch = max(config.batchSize, config.evalBatchSize)
        let fresh = model.backend == nil
        try model.prepare(on: backend, maxBatch: maxBatch)
        if fresh { model.initialize(seed: config.seed) }
        if fresh, let reuse = config.reuse { try PrefixReuse.apply(reuse, to: model) }
        optimizer = Optimizer(config.optimizer, backend: backend)
        self.normalization = normalization ?? data.train.channelStatistics()
        trainLoader = BatchLoader(dataset: data.train, batchSize: config.batchSize, seed: config.seed,
                                  shuffle: true, partialBatch: config.data.dropLastBatch ? .drop : .keep)
        let shape = [maxBatch] + data.train.imageShape
        rawImages = try backend.allocate(shape)
        images = try backend.allocate(shape)
        labels = try backend.allocate([maxBatch])
        losses = try backend.allocate([maxBatch])
        gradLogits = try backend.allocate([maxBatch, data.train.classes])
        trainStatistics = try BatchStatistics(backend: backend, capacity: trainLoader.batchesPerEpoch)
        evaluationStatistics = try BatchStatistics(backend: backend, capacity: 256)
        (cache, cachedFeatures, cacheNote) = try TrainingRun.makeCache(config: config, model: model, backend: backend,
                                                                       images: data.train.count, maxBatch: maxBatch,
                                                                       train: data.train, normalization: self.normalization)
        guard trainLoader.batchesPerEpoch > 0 else {
            throw TrainingError("the training set has \(data.train.count) images, fewer than one batch of \(config.batchSize)")
        }
    }

    public var isFinished: Bool { epoch >= config.epochs }

    // MARK: Steps

    /// Uploads a host batch and prepares the network input on the device.
    func stage(_ batch: ImageBatch, augment: Bool) -> (x: Tensor, y: Tensor) {
        let n = batch.count
        let raw = rawImages.slice(0..<n), x = images.slice(0..<n)
        let y = stageLabels(batch)
        backend.upload(batch.images, to: raw)
        if augment {
            // One Philox counter per (epoch, batch): a resumed run draws the same crops.
            let counter = UInt64(batch.epoch) << 32 | UInt64(batch.index)
            backend.randomCropFlip(raw, output: x, padding: 4, allowFlip: true, seed: augmentSeed, counter: counter)
            backend.normalizeChannels(x, output: x, mean: normalization.mean, std: normalization.std)
        } else {
            backend.normalizeChannels(raw, output: x, mean: normalization.mean, std: normalization.std)
        }
        return (x, y)
    }

    func stageLabels(_ batch: ImageBatch) -> Tensor {
        let y = labels.slice(0..<batch.count)
        backend.upload(batch.labels, to: y)
        return y
    }

    /// Trains one epoch and evaluates on the validation set; appends to `history`.
    @discardableResult
    public func trainEpoch(observer: TrainingObserver = TrainingObserver()) throws -> EpochMetrics {
        let e = epoch
        let start = monotonicNow()
        let batches = trainLoader.batchesPerEpoch
        let stageCosts = model.stageStepCosts()
        let slots = stageCosts.map { ledger.slot(for: $0.key) }
        let optimizerSlot = ledger.slot(for: "optimizer")
        // Per stage, the forward work of its blocks inside the cached prefix (skipped on a cache hit).
        let blockCosts = model.blockCosts
        let cachedForward = model.stages.map { stage in
            stage.blocks.filter { $0 < (cache?.blocks ?? 0) }.reduce(0.0) { $0 + blockCosts[$1].forward }
        } + [0]
        let before = ledger.snapshot()
        let trainable = model.trainableParameters.map { (name: $0.name, value: $0.value, grad: $0.grad) }
        let trainableCount = model.trainableParameterCount
        let stats = trainStatistics
        stats.reset()
        let running = { (try? stats.running()) ?? (loss: .nan, accuracy: .nan) }
        var lr: Float = 0
        var skippedSteps = 0
        let gradients = trainable.map(\.grad)
        if lossScaler != nil, (gradientSums?.count ?? 0) < gradients.count {
            gradientSums = try backend.allocate([max(gradients.count, 1)])
        }
        try trainLoader.forEachBatch(epoch: e) { batch in
            // SIGINT/SIGTERM: stop before the step; the epoch is redone from the last checkpoint.
            try Interruption.check()
            let n = batch.count
            lr = config.schedule.rate(base: config.optimizer.learningRate,
                                      progress: Double(e) + Double(batch.index) / Double(batches))
            let logits: Tensor, y: Tensor
            var cacheHit = false
            if let cache, let features = cachedFeatures?.slice(0..<n), cache.contains(all: batch.indices) {
                // The frozen prefix already ran on these images: start after it.
                cache.gather(batch.indices, into: features, backend: backend)
                y = stageLabels(batch)
                logits = model.forward(features: features, fromBlock: cache.blocks, mode: .training)
                cacheHit = true
            } else if let cache {
                let staged = stage(batch, augment: false)
                y = staged.y
                let features = model.forwardPrefix(staged.x, blocks: cache.blocks)
                try cache.store(features, for: batch.indices, backend: backend)
                logits = model.forward(features: features, fromBlock: cache.blocks, mode: .training)
            } else {
                let staged = stage(batch, augment: config.data.augment)
                y = staged.y
                logits = model.forward(staged.x, mode: .training)
            }
            let l = losses.slice(0..<n), g = gradLogits.slice(0..<n)
            // Loss scaling multiplies the loss gradient by a power of two (exact), and the
            // weight gradients are divided by it again before the step.
            let scale = lossScaler?.scale ?? 1
            backend.softmaxCrossEntropy(logits: logits, labels: y, losses: l, gradLogits: g, gradScale: scale / Float(n))
            try stats.record(losses: l, logits: logits, labels: y)
            model.backward(g)
            if var scaler = lossScaler, let sums = gradientSums {
                let finite = try LossScaler.allFinite(gradients, sums: sums, backend: backend)
                if finite {
                    scaler.unscale(gradients, backend: backend)
                    try optimizer.step(trainable, learningRate: lr)
                } else {
                    // Skipped: weights and optimizer state stay; the batch's loss, if it is not
                    // finite either, is no divergence (the scale backs off instead).
                    skippedSteps += 1
                    stats.skipped()
                }
                scaler.update(finite: finite)
                lossScaler = scaler
            } else {
                try optimizer.step(trainable, learningRate: lr)
            }
            let images = Double(n)
            for (k, c) in stageCosts.enumerated() {
                let saved = cacheHit ? cachedForward[k] : 0
                ledger.add(.forward, images * (c.performed.forward - saved), slot: slots[k])
                if saved > 0 { ledger.skip(.cachedForward, images * saved, slot: slots[k]) }
                ledger.add(.backwardData, images * c.performed.backwardData, slot: slots[k])
                ledger.add(.backwardWeights, images * c.performed.backwardWeight, slot: slots[k])
                ledger.skip(.frozenBackward, images * (c.skipped.backwardData + c.skipped.backwardWeight), slot: slots[k])
            }
            ledger.add(.optimizer, optimizer.flops(parameterCount: trainableCount), slot: optimizerSlot)
            observer.batch(e + 1, batch.index + 1, batches, running)
        }
        // The epoch's one read of its per-batch sums (added in batch order: the same Double as a
        // per-batch read), which is also where a diverged loss shows.
        try stats.fold()
        try backend.synchronize()
        if let bad = stats.firstNonFiniteBatch {
            throw DivergenceError(epoch: e + 1, batch: bad + 1, what: "non-finite loss")
        }
        if skippedSteps == batches {
            throw DivergenceError(epoch: e + 1, batch: nil,
                                  what: "every step skipped: gradients not finite at any loss scale down to \(lossScaler?.scale ?? 1)")
        }
        try cache?.persist()
        let lossSum = stats.lossSum, correct = stats.correctCount, seen = stats.images
        let trainSeconds = monotonicNow() - start
        let validation = try data.validation.map { try evaluate($0) }
        if let v = validation, !v.loss.isFinite {
            throw DivergenceError(epoch: e + 1, batch: nil, what: "non-finite validation loss")
        }
        let flops = EpochFlops(from: before, to: ledger.snapshot())
        epoch = e + 1
        let metrics = EpochMetrics(
            epoch: epoch, learningRate: Double(lr), trainLoss: lossSum / Double(max(seen, 1)),
            trainAccuracy: Double(correct) / Double(max(seen, 1)),
            validationLoss: validation?.loss, validationAccuracy: validation?.accuracy,
            seconds: monotonicNow() - start, imagesPerSecond: Double(seen) / trainSeconds,
            trainingFlops: flops.epoch.executed, cumulativeTrainingFlops: cumulativeFlops,
            skippedFlops: flops.epoch.skipped, flops: flops.epoch,
            skippedSteps: lossScaler == nil ? nil : skippedSteps, lossScale: lossScaler.map { Double($0.scale) })
        if let acc = validation?.accuracy, acc > (bestValidationAccuracy ?? -1) {
            bestValidationAccuracy = acc
            bestEpoch = epoch
        }
        history.append(metrics)
        observer.epoch(metrics)
        return metrics
    }

    /// Mean loss and accuracy of the current model on `dataset` (inference mode, no augmentation).
    public func evaluate(_ dataset: ImageDataset) throws -> Evaluation {
        let loader = BatchLoader(dataset: dataset, batchSize: config.evalBatchSize, shuffle: false,
                                 partialBatch: .keep)
        let stats = evaluationStatistics
        stats.reset()
        try loader.forEachBatch(epoch: 0) { batch in
            let n = batch.count
            let (x, y) = stage(batch, augment: false)
            let logits = model.forward(x, mode: .inference)
            let l = losses.slice(0..<n)
            backend.softmaxCrossEntropy(logits: logits, labels: y, losses: l, gradLogits: nil, gradScale: 0)
            try stats.record(losses: l, logits: logits, labels: y)
        }
        try stats.fold()
        let lossSum = stats.lossSum, correct = stats.correctCount
        let count = max(dataset.count, 1)
        return Evaluation(loss: lossSum / Double(count), accuracy: Double(correct) / Double(count), count: dataset.count)
    }
}

extension TrainingRun {
    /// An activation cache for the frozen prefix when training can use one: prefix frozen and
    /// reused with caching asked for, no augmentation in front of it, and within the budget.
    static func makeCache(config: TrainConfig, model: Model, backend: Backend, images: Int, maxBatch: Int,
                          train: ImageDataset, normalization: (mean: [Float], std: [Float])) throws -> (ActivationCache?, Tensor?, String?) {
        let frozen = model.frozenBlockCount
        guard frozen > 0, let reuse = config.reuse, reuse.cache else { return (nil, nil, nil) }
        guard !config.data.augment else {
            return (nil, nil, "frozen prefix not cached: random augmentation changes its input every epoch")
        }
        let shape = model.inputShape(ofBlock: frozen)
        let fingerprint = try reuse.cacheFile == nil ? 0
            : cacheFingerprint(config: config, model: model, backend: backend, frozen: frozen, train: train, normalization: normalization)
        guard let cache = ActivationCache(images: images, blocks: frozen, featureShape: shape, maxBatch: maxBatch,
                                          budget: reuse.cacheBudget, file: reuse.cacheFile, fingerprint: fingerprint) else {
            let need = images * shape.reduce(1, *) * 4
            return (nil, nil, "frozen prefix not cached: \(need >> 20) MiB of outputs exceed the \(reuse.cacheBudget >> 20) MiB budget")
        }
        return (cache, try backend.allocate([maxBatch] + shape), nil)
    }

    /// What a frozen prefix's cached outputs depend on: the prefix's weights, the training images
    /// in their order (data, split and seed), the normalisation and the output shape.
    static func cacheFingerprint(config: TrainConfig, model: Model, backend: Backend, frozen: Int, train: ImageDataset,
                                 normalization: (mean: [Float], std: [Float])) throws -> UInt64 {
        // The precision changes the prefix's outputs; fp32's text is as before it existed (caches stay valid).
        let text = "\(frozen) \(model.inputShape(ofBlock: frozen)) \(train.count) \(config.seed) "
            + (config.precision == .fp32 ? "" : "\(config.precision.rawValue) ")
            + "\(try jsonString(config.data)) \(normalization.mean.map(\.bitPattern)) \(normalization.std.map(\.bitPattern))"
        var hash = train.labels.withUnsafeBytes { fnv1a64(bytes: $0, continuing: fnv1a64(text)) }
        for block in model.blocks[0..<frozen] {
            for (name, tensor) in block.stateDict {
                hash = try backend.download(tensor).withUnsafeBytes { fnv1a64(bytes: $0, continuing: fnv1a64(bytes: name.utf8, continuing: hash)) }
            }
        }
        return hash
    }
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
