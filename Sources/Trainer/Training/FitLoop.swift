import GPUTensor

/// Callbacks of the fit loop; all optional.
public struct FitHooks {
    /// Batch progress and each epoch's metrics as it ends (display).
    public var observer = TrainingObserver()
    /// After an epoch's metrics line and checkpoint are committed (the run resumes from it).
    public var committed: (EpochMetrics) throws -> Void = { _ in }
    /// Early stop: a reason to end the run after this epoch, before its budget; nil goes on.
    public var stop: (EpochMetrics) -> String? = { _ in nil }

    public init(observer: TrainingObserver = TrainingObserver()) { self.observer = observer }
}

/// What a driver adds to plain training: the model between epochs (growth may swap it for a
/// bigger one), the metrics line of an epoch, the checkpoint's metadata and when to stop.
/// The defaults are plain training (`strata train`, search and hpo trials).
public protocol FitPolicy: AnyObject {
    /// Before each epoch: the run that trains it, `run` itself or a run on another model.
    /// Epochs it trains itself (growth's look-ahead) are recorded with `loop.record`.
    func prepare(_ run: TrainingRun, loop: FitLoop) throws -> TrainingRun
    /// Why the run ends before its budget, once it does (asked before each epoch and after it).
    var stopReason: String? { get }
    /// Sees the epoch just trained; returns its `metrics.jsonl` line.
    func epochEnded(_ metrics: EpochMetrics, run: TrainingRun) throws -> any Encodable
    /// The checkpoint of the epoch just trained.
    func checkpoint(_ run: TrainingRun) throws -> SafeTensors
    /// Whether that checkpoint is the best so far; nil lets the recorder choose by validation
    /// accuracy (for runs whose epochs belong to different models).
    func isBest(_ metrics: EpochMetrics, run: TrainingRun) -> Bool?
}

extension FitPolicy {
    public func prepare(_ run: TrainingRun, loop: FitLoop) throws -> TrainingRun { run }
    public var stopReason: String? { nil }
    public func epochEnded(_ metrics: EpochMetrics, run: TrainingRun) throws -> any Encodable { metrics }
    public func checkpoint(_ run: TrainingRun) throws -> SafeTensors { try run.checkpoint() }
    public func isBest(_ metrics: EpochMetrics, run: TrainingRun) -> Bool? { run.bestEpoch == run.epoch }
}

/// Plain training: one model, a line and a checkpoint per epoch.
public final class PlainFit: FitPolicy {
    public init() {}
}

/// The one epoch -> checkpoint -> commit loop of every driver (train, grow and its baseline,
/// search and hpo trials and the hpo's final run).
///
/// Per epoch: the policy prepares the run, the run trains an epoch, its metrics line is appended
/// and its checkpoint committed through `recorder` (which names it last, and best when it is, in
/// `manifest.json`). A run stopped after any commit (a segment, a kill, SIGINT) resumes from its
/// directory and ends bit-identical to one never stopped. Without a recorder nothing is written
/// (tests, in-memory runs).
public final class FitLoop {
    public private(set) var run: TrainingRun
    public let recorder: RunRecorder?
    public let policy: FitPolicy
    public var hooks: FitHooks
    /// Why the run stopped before its budget (the policy's or the early-stop hook's reason).
    public private(set) var stopReason: String?

    public init(run: TrainingRun, recorder: RunRecorder?, policy: FitPolicy = PlainFit(), hooks: FitHooks = FitHooks()) {
        self.run = run
        self.recorder = recorder
        self.policy = policy
        self.hooks = hooks
    }

    /// Trains epochs until the run's epoch is `until` (default: its budget, `config.epochs`) or
    /// a stop. Returns true when the run has ended (budget spent or stopped): the caller finishes
    /// it; false when a segment ended first and the run stays incomplete and resumable.
    /// A diverged loss throws `DivergenceError` (the manifest says `diverged`); SIGINT/SIGTERM
    /// throws `InterruptedError` (the manifest says `interrupted`), as `fit` always has.
    @discardableResult
    public func train(until: Int? = nil) throws -> Bool {
        do {
            while stopReason == nil {
                if let reason = policy.stopReason { stopReason = reason; break }
                let end = min(until ?? run.config.epochs, run.config.epochs)
                guard run.epoch < end else { break }
                run = try policy.prepare(run, loop: self)
                guard run.epoch < end else { break }
                let metrics = try run.trainEpoch(observer: hooks.observer)
                let line = try policy.epochEnded(metrics, run: run)
                stopReason = policy.stopReason ?? hooks.stop(metrics)
                if let recorder {
                    let file = try policy.checkpoint(run)
                    try recorder.appendMetrics(line)
                    if let best = policy.isBest(metrics, run: run) {
                        try recorder.commit(file, epoch: run.epoch, best: best, validationAccuracy: metrics.validationAccuracy)
                    } else {
                        try recorder.commit(file, epoch: run.epoch, validationAccuracy: metrics.validationAccuracy)
                    }
                }
                try hooks.committed(metrics)
            }
        } catch let error as DivergenceError {
            throw recorder?.diverged(error) ?? error
        } catch let error as InterruptedError {
            throw recorder?.interrupted(error) ?? error
        }
        return stopReason != nil || run.isFinished
    }

    /// Appends a metrics line that no checkpoint follows yet (growth's look-ahead epochs): it
    /// belongs to the run once the next commit names it.
    public func record<T: Encodable>(_ line: T) throws {
        try recorder?.appendMetrics(line)
    }
}
