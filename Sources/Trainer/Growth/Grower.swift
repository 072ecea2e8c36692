import GPUTensor

/// Settings of an incremental-training run (`strata grow`).
public struct GrowConfig: Codable, Equatable, Sendable {
    public enum Initialization: String, Codable, Sendable {
        /// The new sub-network is trained alone for a few epochs over the frozen, trained prefix.
        case lookahead
        /// The new sub-network starts from He init.
        case random
    }

    /// The full model (all K sub-networks), data, optimizer, batch size, seed. `epochs` is unused.
    public var train: TrainConfig
    /// Sub-networks the first phase trains (ResNet: 2, the stem with layer1; others: 1).
    public var startStages: Int
    public var window: Int
    public var gamma: Double
    public var initialization: Initialization
    public var lookaheadEpochs: Int
    /// Budget: epochs in all (look-ahead epochs included).
    public var maxEpochs: Int
    /// Stop once validation accuracy reaches this fraction.
    public var targetAccuracy: Double?
    /// Insert the next sub-network after this many epochs of a stage even if the angle has not fallen.
    public var maxEpochsPerStage: Int?
    /// Also train the full network from scratch under the same budget (`--baseline`).
    public var baseline: Bool?

    public init(train: TrainConfig, startStages: Int, window: Int = 3, gamma: Double = 0.5,
                initialization: Initialization = .lookahead, lookaheadEpochs: Int = 2, maxEpochs: Int,
                targetAccuracy: Double? = nil, maxEpochsPerStage: Int? = nil, baseline: Bool = false) {
        self.train = train
        self.startStages = startStages
        self.window = window
        self.gamma = gamma
        self.initialization = initialization
        self.lookaheadEpochs = lookaheadEpochs
        self.maxEpochs = maxEpochs
        self.targetAccuracy = targetAccuracy
        self.maxEpochsPerStage = maxEpochsPerStage
        self.baseline = baseline
    }
}

/// One epoch of a grow run, as written to `metrics.jsonl`.
public struct GrowEpoch: Codable, Equatable, Sendable {
    /// 1-based epoch over the whole run.
    public var epoch: Int
    /// Sub-networks in the model this epoch (1-based).
    public var stages: Int
    /// `train` (the whole current network) or `lookahead` (only the new sub-network and classifier).
    public var phase: String
    public var inferenceFlopsPerImage: Double
    public var parameters: Int
    public var metrics: EpochMetrics
}

/// The per-stage table of `summary.json`.
public struct GrowStage: Codable, Equatable, Sendable {
    public var stages: Int
    public var firstEpoch: Int
    public var epochs: Int
    public var parameters: Int
    public var inferenceFlopsPerImage: Double
    public var cumulativeTrainingFlops: Double
    public var validationAccuracy: Double?
    public var testAccuracy: Double?
    /// Why the next sub-network was inserted (angle values), or why the run stopped.
    public var endReason: String
}

public struct GrowSummary: Codable, Equatable, Sendable {
    public var label: String
    public var stages: [GrowStage]
    public var epochs: Int
    public var finalValidationAccuracy: Double?
    public var testAccuracy: Double?
    public var cumulativeTrainingFlops: Double
    public var skippedFlops: Double
    public var seconds: Double
}

/// Where a grow run stands after an epoch, saved as checkpoint metadata `grow`: with the
/// checkpoint's model and optimizer, everything needed to continue it exactly.
public struct GrowProgress: Codable, Equatable, Sendable {
    /// What the run does next.
    public enum Next: Codable, Equatable, Sendable {
        case train
        case insert(reason: String)
        case finish(reason: String)
        case done
    }
    public var stages: Int
    public var stageStart: Int
    public var criterion: AngleCriterion
    public var history: [GrowEpoch]
    public var stageTable: [GrowStage]
    /// FLOPs of the finished phases (the checkpoint's own ledger holds the current one's).
    public var finishedLedger: FlopSnapshot
    public var seconds: Double
    public var next: Next
    /// When `next` is `done`.
    public var summary: GrowSummary?
}

/// Incremental training (the angle criterion with look-ahead initialisation) as a policy over
/// the one fit loop (`FitLoop`): each phase is a `TrainingRun` on a model with more sub-networks,
/// swapped in between epochs when the criterion fires.
public final class Grower: FitPolicy {
    public let config: GrowConfig
    public let backend: Backend
    public let data: RunData
    public private(set) var history: [GrowEpoch] = []
    public private(set) var stageTable: [GrowStage] = []
    /// Sees every epoch (look-ahead ones included) as it ends, for progress lines.
    public var epochDone: (GrowEpoch) -> Void = { _ in }
    /// One line per insertion.
    public var event: (String) -> Void = { _ in }
    /// FLOPs of finished phases; the current phase's run holds the rest.
    private var finishedLedger = FlopLedger()
    private var seconds = 0.0
    // Where the schedule stands (saved in every checkpoint as `GrowProgress`).
    private var stages = 0
    private var total = 0
    private var stageStart = 1
    private var criterion: AngleCriterion
    private var next = GrowProgress.Next.train
    private var model: Model?
    private var observer = TrainingObserver()

    public init(config: GrowConfig, backend: Backend, data: RunData) {
        self.config = config
        self.backend = backend
        self.data = data
        criterion = AngleCriterion(window: config.window, gamma: config.gamma, maxEpochsPerStage: config.maxEpochsPerStage)
    }

    /// Number of sub-networks of the full model.
    public var totalStages: Int {
        get throws { try Model(spec: config.train.model).stages.count }
    }

    func spec(stages k: Int) -> ModelSpec {
        var s = config.train.model
        s.activeStages = k
        return s
    }

    private var budgetReason: String { "budget of \(config.maxEpochs) epochs spent" }

    /// Runs the whole schedule through the fit loop, recording through `recorder` when one is
    /// given: a metrics line per epoch, a checkpoint after every training epoch and one at the
    /// end (the model, its optimizer and the run's progress as metadata `grow`). `resume`
    /// continues from one of those checkpoints (`resumed` sees the epochs it restored, and
    /// whether the run was complete), and ends exactly where the uninterrupted run would.
    public func run(recorder: RunRecorder? = nil, resume: String? = nil, hooks: FitHooks = FitHooks(),
                    resumed: (_ history: [GrowEpoch], _ done: Bool) throws -> Void = { _, _ in }) throws -> (summary: GrowSummary, model: Model) {
        total = try totalStages
        guard (1...total).contains(config.startStages) else {
            throw TrainingError("--start-stages \(config.startStages) not in 1...\(total)")
        }
        observer = hooks.observer
        var run: TrainingRun
        if let path = resume {
            let file = try SafeTensors.read(from: path)
            let p = try decodeJSON(GrowProgress.self, file.metadata["grow"], file: path, key: "grow")
            guard (1...total).contains(p.stages) else {
                throw TrainingError("\(path): the checkpoint has \(p.stages) sub-networks, the model \(total)")
            }
            stages = p.stages
            let model = try Model(spec: spec(stages: stages))
            self.model = model
            run = try makeRun(model: model, epochsSoFar: 0)
            try run.restore(from: path)
            history = p.history
            stageTable = p.stageTable
            finishedLedger = FlopLedger(restoring: p.finishedLedger)
            seconds = p.seconds
            // The current phase's own epochs (its run's history), as an uninterrupted run has them.
            run.history = history.filter { $0.stages == stages && $0.phase == "train" && $0.epoch >= p.stageStart }.map(\.metrics)
            criterion = p.criterion
            stageStart = p.stageStart
            next = p.next
            try resumed(history, next == .done)
            if next == .done {
                guard let summary = p.summary else { throw TrainingError("\(path): a finished grow checkpoint without its summary") }
                return (summary, model)
            }
        } else {
            stages = config.startStages
            let model = try Model(spec: spec(stages: stages))
            self.model = model
            run = try makeRun(model: model, epochsSoFar: 0)
        }
        let loop = FitLoop(run: run, recorder: recorder, policy: self, hooks: hooks)
        try loop.train(until: config.maxEpochs)
        run = loop.run
        let model = self.model!
        try closePhase(run: run, model: model, stages: stages, firstEpoch: stageStart, reason: loop.stopReason ?? budgetReason)
        let label = "grow (\(config.initialization == .lookahead ? "look-ahead" : "random"))"
        let summary = GrowSummary(label: label, stages: stageTable, epochs: history.count,
                                  finalValidationAccuracy: history.last?.metrics.validationAccuracy,
                                  testAccuracy: stageTable.last?.testAccuracy,
                                  cumulativeTrainingFlops: finishedLedger.executedTotal,
                                  skippedFlops: finishedLedger.skippedTotal, seconds: seconds)
        next = .done
        if let recorder {
            // The epoch last recorded (a training epoch, or a look-ahead one at the end).
            try recorder.commit(try checkpoint(run, summary: summary), epoch: history.last?.epoch ?? 0,
                                validationAccuracy: history.last?.metrics.validationAccuracy)
        }
        return (summary, model)
    }

    // MARK: FitPolicy

    /// Carries out an insertion the last epoch decided on (also when resumed right after it).
    public func prepare(_ run: TrainingRun, loop: FitLoop) throws -> TrainingRun {
        guard case .insert(let reason) = next, let model else { return run }
        let insertedAt = run.epoch   // the new stage's epochs include its look-ahead
        let (bigger, nextRun) = try insert(after: model, run: run, stages: stages, of: total, firstEpoch: stageStart,
                                           reason: reason, loop: loop)
        self.model = bigger
        stages += 1
        stageStart = insertedAt + 1
        criterion.startStage()
        next = .train
        return nextRun
    }

    public var stopReason: String? {
        if case .finish(let reason) = next { return reason }
        return nil
    }

    public func epochEnded(_ m: EpochMetrics, run: TrainingRun) throws -> any Encodable {
        let line = record(m, stages: stages, phase: "train", run: run)
        if let target = config.targetAccuracy, let acc = m.validationAccuracy, acc >= target {
            next = .finish(reason: "target validation accuracy \(target) reached")
        } else if stages < total, let acc = m.validationAccuracy ?? Optional(m.trainAccuracy),
                  case .grow(let reason) = criterion.record(acc) {
            next = run.epoch >= config.maxEpochs ? .finish(reason: budgetReason) : .insert(reason: reason)
        }
        return line
    }

    public func checkpoint(_ run: TrainingRun) throws -> SafeTensors { try checkpoint(run, summary: nil) }

    /// Epochs of different models: the recorder keeps the best validation accuracy so far.
    public func isBest(_ metrics: EpochMetrics, run: TrainingRun) -> Bool? { nil }

    private func checkpoint(_ run: TrainingRun, summary: GrowSummary?) throws -> SafeTensors {
        var file = try run.checkpoint()
        file.metadata["grow"] = try jsonString(GrowProgress(
            stages: stages, stageStart: stageStart, criterion: criterion, history: history, stageTable: stageTable,
            finishedLedger: finishedLedger.snapshot(), seconds: seconds, next: next, summary: summary))
        return file
    }

    // MARK: Steps

    /// Ends the phase of `run` (stage table, ledger), inserts sub-network k+1, runs look-ahead
    /// when configured, and returns the bigger model with the run that trains it next, whose
    /// optimizer carries the moments of every tensor carried over.
    private func insert(after model: Model, run: TrainingRun, stages k: Int, of total: Int, firstEpoch: Int, reason: String,
                        loop: FitLoop) throws -> (Model, TrainingRun) {
        try closePhase(run: run, model: model, stages: k, firstEpoch: firstEpoch, reason: reason)
        let (next, copied) = try insertStage(after: model, stages: k)
        event("epoch \(run.epoch): inserting sub-network \(k + 1) of \(total) (\(reason)); "
              + "\(copied) tensors carried over, \(config.initialization == .lookahead ? "look-ahead for \(config.lookaheadEpochs) epochs" : "random init")")
        var epochs = run.epoch
        var lookRun: TrainingRun?
        if config.initialization == .lookahead && config.lookaheadEpochs > 0 {
            var lines: [GrowEpoch] = []
            let look = try lookAhead(next, trainedStages: k, epochsSoFar: epochs, observer: observer) { lm, look in
                lines.append(self.record(lm, stages: k + 1, phase: "lookahead", run: look))
            }
            for line in lines { try loop.record(line) }
            finishedLedger.merge(look.ledger)
            seconds += look.history.reduce(0) { $0 + $1.seconds }
            epochs = look.epoch
            lookRun = look
        }
        let nextRun = try makeRun(model: next, epochsSoFar: epochs)
        // Optimizer moments follow the tensors that were carried over (look-ahead's are newer).
        let params = next.parameters.map { (name: $0.name, value: $0.value) }
        try nextRun.optimizer.adoptState(from: run.optimizer, parameters: params)
        if let lookRun { try nextRun.optimizer.adoptState(from: lookRun.optimizer, parameters: params) }
        return (next, nextRun)
    }

    /// The model with sub-network k+1 inserted between the trained part and the classifier:
    /// tensors of `model` carried over by name and shape, the rest (the new sub-network, and the
    /// classifier when its input changed) freshly initialised. Returns it and the tensors copied.
    public func insertStage(after model: Model, stages k: Int) throws -> (Model, Int) {
        let next = try Model(spec: spec(stages: k + 1))
        try next.prepare(on: backend, maxBatch: max(config.train.batchSize, config.train.evalBatchSize))
        next.initialize(seed: config.train.seed &+ UInt64(k))
        let copied = try copyMatchingState(from: model, to: next)
        return (next, copied)
    }

    /// Look-ahead: trains only the new sub-network and the classifier for `lookaheadEpochs`
    /// (budget permitting) over the frozen first `trainedStages`, then unfreezes everything.
    public func lookAhead(_ model: Model, trainedStages k: Int, epochsSoFar: Int,
                          observer: TrainingObserver = TrainingObserver(),
                          epochDone: (EpochMetrics, TrainingRun) -> Void = { _, _ in }) throws -> TrainingRun {
        model.freezeStages(upTo: k)
        defer { model.freezePrefix(blocks: 0) }
        let look = try makeRun(model: model, epochsSoFar: epochsSoFar)
        // The fit loop without a recorder: look-ahead epochs get metrics lines (by the caller), no checkpoint.
        try withoutActuallyEscaping(epochDone) { epochDone in
            var hooks = FitHooks(observer: observer)
            hooks.committed = { epochDone($0, look) }
            try FitLoop(run: look, recorder: nil, hooks: hooks).train(until: epochsSoFar + config.lookaheadEpochs)
        }
        return look
    }

    private func makeRun(model: Model, epochsSoFar: Int) throws -> TrainingRun {
        var c = config.train
        c.model = model.spec ?? c.model
        c.epochs = config.maxEpochs
        let run = try TrainingRun(config: c, backend: backend, data: data, model: model)
        run.epoch = epochsSoFar
        return run
    }

    private func record(_ m: EpochMetrics, stages: Int, phase: String, run: TrainingRun) -> GrowEpoch {
        var metrics = m
        metrics.cumulativeTrainingFlops = finishedLedger.executedTotal + run.ledger.executedTotal
        let e = GrowEpoch(epoch: m.epoch, stages: stages, phase: phase, inferenceFlopsPerImage: run.model.cost.forward,
                          parameters: run.model.parameterCount, metrics: metrics)
        history.append(e)
        epochDone(e)
        return e
    }

    /// Ends the training phase of `run`: its row of the stage table (with a test evaluation),
    /// and its FLOPs and seconds added to the finished phases'.
    private func closePhase(run: TrainingRun, model: Model, stages: Int, firstEpoch: Int, reason: String) throws {
        let test = try data.test.map { try run.evaluate($0) }
        finishedLedger.merge(run.ledger)
        seconds += run.history.reduce(0) { $0 + $1.seconds }
        stageTable.append(GrowStage(
            stages: stages, firstEpoch: firstEpoch, epochs: run.epoch - firstEpoch + 1,
            parameters: model.parameterCount, inferenceFlopsPerImage: model.cost.forward,
            cumulativeTrainingFlops: finishedLedger.executedTotal,
            validationAccuracy: history.last { $0.stages == stages }?.metrics.validationAccuracy, testAccuracy: test?.accuracy, endReason: reason))
    }
}

/// Copies every tensor of `source` whose name and shape `destination` has too (the trained
/// prefix; the classifier when its shapes still fit). Returns how many were copied.
@discardableResult
public func copyMatchingState(from source: Model, to destination: Model) throws -> Int {
    guard let backend = destination.backend, let sourceBackend = source.backend else {
        preconditionFailure("copyMatchingState needs prepared models")
    }
    let have = Dictionary(source.stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    var copied = 0
    for (name, tensor) in destination.stateDict {
        guard let s = have[name], s.shape == tensor.shape else { continue }
        if sourceBackend === backend {
            backend.copy(s, to: tensor)
        } else {
            backend.upload(try sourceBackend.download(s), to: tensor)
        }
        copied += 1
    }
    return copied
}
