import GPUTensor

/// One trial as self-contained JSON: everything a worker needs to run it, on this machine
/// (`ProcessExecutor`) or elsewhere (an executor for a cluster sends the same document).
/// Written to `<trial folder>/job.json` when the trial is scheduled, so an interrupted trial
/// resumes with the donor chosen then.
///
/// Two kinds of work fit in it: a search trial (`trial`, a point of a cnn search space turned into
/// a training here) or an explicit training (`train`, what `strata hpo` sends: any model, its
/// hyperparameters applied), optionally only up to epoch `untilEpoch` (a segment: the run stays
/// resumable, and the next job on the same folder continues it up to the next rung).
public struct TrialJob: Codable, Equatable, Sendable {
    public var id: String
    /// A search trial; nil when `train` says what to train.
    public var trial: TrialConfig?
    public var data: DataConfig
    public var device: String
    /// CPU threads of the trial's backend (the machine's cores split between workers).
    public var threads: Int
    /// The trial's folder: `job.json`, `outcome.json`, the worker's logs, and `run/`, the
    /// trial's strata run directory (config, metrics, checkpoints, summary).
    public var directory: String
    public var runDirectory: String { directory + "/run" }
    public var donor: String?
    public var reuseLayers: Int
    /// The frozen prefix's checkpoint (content-addressed), when there is a donor.
    public var prefixPath: String?
    public var prefixKey: String?
    /// Cache the frozen prefix's outputs across epochs (needs no augmentation).
    public var cache: Bool
    public var cacheBudget: Int
    public var attempt: Int
    /// The training to run as it is (hpo trials); when set, `trial` is ignored.
    public var train: TrainConfig? = nil
    /// Stop after this epoch (a checkpoint is committed, the run is not complete); nil: train
    /// every epoch of the config.
    public var untilEpoch: Int? = nil
    /// Keep the test set and report its accuracy when the training completes: the hpo's final
    /// training (trials never see the test set: they are chosen on validation alone).
    public var keepTestSet: Bool? = nil
    /// The search's `--precision` for a search trial (nil in jobs from before it: fp32); an
    /// explicit training carries its own in `train`.
    public var precision: Precision? = nil

    /// The precision the trial's backend computes in.
    public var runPrecision: Precision { train?.precision ?? precision ?? .fp32 }

    /// The epoch this job trains up to, when it is an explicit training.
    public var targetEpoch: Int? {
        if let train { return min(untilEpoch ?? train.epochs, train.epochs) }
        // A search trial in segments (a pruned search).
        if let trial, let untilEpoch { return min(untilEpoch, trial.epochs) }
        return nil
    }

    /// The reuse part of the trial's TrainConfig.
    public var reuse: ReuseConfig? {
        guard let prefixPath, reuseLayers > 0 else { return nil }
        // The prefix's outputs are shared by every trial freezing it: computed once per search.
        let activations = (prefixPath.hasSuffix(".safetensors") ? String(prefixPath.dropLast(12)) : prefixPath) + ".activations"
        return ReuseConfig(source: prefixPath, blocks: reuseLayers, mode: .freeze, cache: cache, cacheBudget: cacheBudget,
                           cacheFile: activations)
    }
}

/// What a worker reports back: `outcome.json` in the trial's run directory.
public struct TrialOutcome: Codable, Equatable, Sendable {
    public var id: String
    public var status: StudyEvent.Status
    public var error: String?
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    public var testAccuracy: Double?
    public var seconds: Double
    public var flopsExecuted: Double
    public var flopsSkipped: Double
    public var epochs: Int
    /// Per epoch so far (explicit trainings): validation loss and accuracy, null where not finite
    /// or absent. What the hpo's pruner decides on.
    public var validationLosses: [Double?]?
    public var validationAccuracies: [Double?]?
    /// CPU seconds (user + system, every thread) the worker spent on this job: the search's
    /// compute, much less disturbed than wall time by other work on a shared machine.
    public var cpuSeconds: Double?
    /// Set when the worker stopped on an infrastructure fault (`InfrastructureFault`): the
    /// search stops and the trial runs again on `--resume`; not the trial's own result.
    public var fault: String?

    public init(id: String, status: StudyEvent.Status, error: String? = nil, validationLoss: Double? = nil,
                validationAccuracy: Double? = nil, testAccuracy: Double? = nil, seconds: Double = 0,
                flopsExecuted: Double = 0, flopsSkipped: Double = 0, epochs: Int = 0,
                validationLosses: [Double?]? = nil, validationAccuracies: [Double?]? = nil) {
        self.id = id
        self.status = status
        self.error = error
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.testAccuracy = testAccuracy
        self.seconds = seconds
        self.flopsExecuted = flopsExecuted
        self.flopsSkipped = flopsSkipped
        self.epochs = epochs
        self.validationLosses = validationLosses
        self.validationAccuracies = validationAccuracies
    }

    public static func failed(_ id: String, _ error: String) -> TrialOutcome {
        TrialOutcome(id: id, status: .failed, error: error)
    }
}

/// Runs trials. The engine submits jobs while `freeSlots > 0` and collects outcomes with `poll`;
/// a local process pool, an in-process runner (tests) and a cluster client all fit behind this.
public protocol TrialExecutor: AnyObject {
    var freeSlots: Int { get }
    func submit(_ job: TrialJob) throws
    /// Outcomes of trials that ended, waiting up to `timeout` seconds for the first one.
    /// Each carries the wall seconds the executor measured.
    func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)]
    /// Stops every running trial (the search is being abandoned).
    func cancelAll()
}

/// Runs each trial synchronously inside `submit` with `body` (tests; one slot).
public final class InProcessExecutor: TrialExecutor {
    let body: (TrialJob) -> TrialOutcome
    private var done: [(outcome: TrialOutcome, wallSeconds: Double)] = []
    public private(set) var submitted: [TrialJob] = []

    public init(body: @escaping (TrialJob) -> TrialOutcome = { TrialRunner.run($0) }) { self.body = body }

    public var freeSlots: Int { done.isEmpty ? 1 : 0 }

    public func submit(_ job: TrialJob) throws {
        submitted.append(job)
        let start = monotonicNow()
        let outcome = body(job)
        done.append((outcome, monotonicNow() - start))
    }

    public func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        defer { done.removeAll() }
        return done
    }

    public func cancelAll() {}
}

extension TrialJob {
    public static func read(from path: String) throws -> TrialJob { try SearchJSON.read(TrialJob.self, from: path) }
}

/// Compact sorted-key JSON of `value` on one line (dry-run output, worker output).
public func encodeJSON<T: Encodable>(_ value: T) -> String { SearchJSON.canonical(value) }
