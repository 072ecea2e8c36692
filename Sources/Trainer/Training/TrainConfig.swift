import GPUTensor

/// Everything needed to rerun a training job; written to `config.json` in the run directory and
/// into every checkpoint's metadata.
public struct TrainConfig: Codable, Equatable, Sendable {
    /// The name the model was asked for (`resnet20`, `cnn`, ...), for display.
    public var modelName: String
    public var model: ModelSpec
    public var data: DataConfig
    public var epochs: Int
    public var batchSize: Int
    /// Batch size for validation and test passes.
    public var evalBatchSize: Int
    public var optimizer: OptimizerConfig
    public var schedule: LearningRateSchedule
    public var seed: UInt64
    /// The device asked for (`cpu`, `cuda`, `auto`); a resumed run may pick another.
    public var device: String
    /// Layer reuse from a trained model (prefix copied, frozen or fine-tuned).
    public var reuse: ReuseConfig?
    /// The format convolutions and GEMMs compute in (`--precision`); the backend a run trains
    /// on must compute in it (`TrainingRun.init` refuses another), so a resumed run keeps it.
    /// Absent in config.json files from before it: fp32.
    public var precision: Precision

    public init(modelName: String, model: ModelSpec, data: DataConfig, epochs: Int, batchSize: Int,
                evalBatchSize: Int? = nil, optimizer: OptimizerConfig, schedule: LearningRateSchedule = .init(),
                seed: UInt64 = 0, device: String = "auto", reuse: ReuseConfig? = nil, precision: Precision = .fp32) {
        self.modelName = modelName
        self.model = model
        self.data = data
        self.epochs = epochs
        self.batchSize = batchSize
        self.evalBatchSize = evalBatchSize ?? max(batchSize, 256)
        self.optimizer = optimizer
        self.schedule = schedule
        self.seed = seed
        self.device = device
        self.reuse = reuse
        self.precision = precision
    }

    enum CodingKeys: String, CodingKey {
        case modelName, model, data, epochs, batchSize, evalBatchSize, optimizer, schedule, seed, device, reuse, precision
    }

    // Written out only for `precision`'s default: everything else decodes as the synthesized code did.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelName = try c.decode(String.self, forKey: .modelName)
        model = try c.decode(ModelSpec.self, forKey: .model)
        data = try c.decode(DataConfig.self, forKey: .data)
        epochs = try c.decode(Int.self, forKey: .epochs)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        evalBatchSize = try c.decode(Int.self, forKey: .evalBatchSize)
        optimizer = try c.decode(OptimizerConfig.self, forKey: .optimizer)
        schedule = try c.decode(LearningRateSchedule.self, forKey: .schedule)
        seed = try c.decode(UInt64.self, forKey: .seed)
        device = try c.decode(String.self, forKey: .device)
        reuse = try c.decodeIfPresent(ReuseConfig.self, forKey: .reuse)
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
    }
}

/// Where the images come from and how they are prepared.
public struct DataConfig: Codable, Equatable, Sendable {
    /// `cifar10` or `fashion-mnist`/`mnist` (IDX); nil: detected from the directory.
    public var kind: String?
    public var path: String
    /// Fraction of the training set held out for validation (seeded split; 0 disables it).
    public var validationFraction: Double
    /// Random crop from a 4-pixel zero-padded image plus horizontal flip, on the device.
    public var augment: Bool
    /// Drop the last training batch when it is smaller than the batch size (batch norm needs
    /// more than one image, and full batches keep its statistics stable).
    public var dropLastBatch: Bool
    /// Use only this many training images (quick runs); nil: all.
    public var trainLimit: Int?
    /// CIFAR-100: `fine` (100 classes, the default) or `coarse` (20).
    public var labels: String?
    /// Image folders: [height, width] every image is resized to; nil: the images' own size.
    public var imageSize: [Int]?
    /// Image folders: `area` (default) or `bilinear` (`ResizeFilter`).
    public var resizeFilter: String?

    // The last three are optional, so config.json files written before them still decode.
    public init(kind: String? = nil, path: String, validationFraction: Double = 0.1, augment: Bool = true,
                dropLastBatch: Bool = true, trainLimit: Int? = nil, labels: String? = nil,
                imageSize: [Int]? = nil, resizeFilter: String? = nil) {
        self.kind = kind
        self.path = path
        self.validationFraction = validationFraction
        self.augment = augment
        self.dropLastBatch = dropLastBatch
        self.trainLimit = trainLimit
        self.labels = labels
        self.imageSize = imageSize
        self.resizeFilter = resizeFilter
    }
}

/// One line of `metrics.jsonl`.
public struct EpochMetrics: Codable, Equatable, Sendable {
    /// 1-based epoch number.
    public var epoch: Int
    public var learningRate: Double
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    public var seconds: Double
    public var imagesPerSecond: Double
    /// FLOPs executed by this epoch's training steps and the running total since the run began.
    public var trainingFlops: Double
    public var cumulativeTrainingFlops: Double
    /// FLOPs not executed this epoch thanks to freezing and the activation cache.
    public var skippedFlops: Double
    /// This epoch's FLOPs by stage (and `optimizer`) and phase, executed and skipped.
    public var flops: FlopSnapshot?
    /// With dynamic loss scaling (fp16): the steps skipped for non-finite gradients this epoch,
    /// and the scale at its end. Absent (nil) without it.
    public var skippedSteps: Int? = nil
    public var lossScale: Double? = nil
}

/// `summary.json`.
public struct RunSummary: Codable, Equatable, Sendable {
    public var modelName: String
    public var parameters: Int
    public var trainableParameters: Int
    public var forwardFlopsPerImage: Double
    public var epochs: Int
    public var device: String
    public var bestEpoch: Int?
    public var bestValidationAccuracy: Double?
    public var finalTrainLoss: Double
    public var finalTrainAccuracy: Double
    /// The test set's loss and accuracy with the checkpoint `testCheckpoint` names: the best
    /// one (by validation accuracy) when the run has one, else the last, as `strata eval` uses.
    public var testLoss: Double?
    public var testAccuracy: Double?
    /// "best" or "last": which checkpoint `testLoss` and `testAccuracy` are of, and its epoch.
    public var testCheckpoint: String?
    public var testEpoch: Int?
    /// The last epoch's test figures, when the best checkpoint is another epoch's.
    public var lastTestLoss: Double?
    public var lastTestAccuracy: Double?
    public var totalSeconds: Double
    public var cumulativeTrainingFlops: Double
    public var skippedFlops: Double
    /// The whole run's FLOPs by stage and phase, executed and skipped.
    public var flops: FlopSnapshot?
}
