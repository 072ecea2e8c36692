import GPUTensor
#if canImport(Glibc)
import Glibc
#endif

/// Runs one trial in this process: the worker side of every executor. All of the search's calls
/// into `TrainingRun` and `RunDirectory` are in this file.
///
/// The trial's folder holds `job.json`, `outcome.json` once it ended, the logs, and `run/`, an
/// ordinary strata run directory (`config.json`, `metrics.jsonl`, checkpoints, `summary.json`)
/// with nothing else in it. Run again on the same folder it returns the stored outcome, or
/// continues from `run/last.safetensors`.
public enum TrialRunner {
    public static func outcomePath(_ trialDirectory: String) -> String { trialDirectory + "/outcome.json" }

    /// The exit status of a worker that stopped on an infrastructure fault (EX_TEMPFAIL).
    public static let faultExitStatus: Int32 = 75

    /// Never throws: any error becomes a failed outcome (also written to `outcome.json`).
    public static func run(_ job: TrialJob) -> TrialOutcome {
        // A group's job (its folder holds `group.json`): the members train together, each member's
        // folder locked and its stored outcome honoured there.
        if FileSystem.kind(of: job.directory + "/" + GroupSpec.fileName) == .file { return GroupJob.run(job) }
        // One process per trial directory at a time: a worker orphaned by a killed search may
        // live a moment longer (see `exitWithParent`); the lock dies with it.
        let lock = open(job.directory + "/.trial.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if lock >= 0 { _ = flock(lock, LOCK_EX) }
        defer { if lock >= 0 { close(lock) } }
        let path = outcomePath(job.directory)
        if FileSystem.kind(of: path) == .file, let done = try? SearchJSON.read(TrialOutcome.self, from: path) {
            // A segment's outcome answers only a job that asks for no more epochs than it holds.
            // An infrastructure fault is no result: the trial runs again.
            if done.fault == nil && (done.status == .failed || job.targetEpoch.map({ done.epochs >= $0 }) ?? true) { return done }
        }
        return recordOutcome(job, at: path) { try train(job) }
    }

    /// Runs `train` and writes its outcome (or the failure it threw) to `path` with the process
    /// CPU time it took; never throws. An interruption writes nothing, so the job continues on
    /// resume; an infrastructure fault is marked as such, so the engine runs the job again.
    static func recordOutcome(_ job: TrialJob, at path: String, _ train: () throws -> TrialOutcome) -> TrialOutcome {
        var outcome: TrialOutcome
        let cpu = processCPUSeconds()
        do { outcome = try train() } catch let error as InterruptedError {
            // Stopped, not ended: no outcome.json, so the trial continues on resume.
            return .failed(job.id, "\(error)")
        } catch {
            outcome = .failed(job.id, "\(error)")
            if let fault = InfrastructureFault.describe(error) { outcome.fault = "\(job.directory): \(fault)" }
        }
        outcome.cpuSeconds = processCPUSeconds() - cpu
        do { try SearchJSON.write(outcome, to: path) } catch {
            var failed = TrialOutcome.failed(job.id, "\(error)")
            failed.fault = InfrastructureFault.describe(error).map { "\(path): \($0)" } ?? outcome.fault
            return failed
        }
        return outcome
    }

    static func train(_ job: TrialJob) throws -> TrialOutcome {
        guard let choice = DeviceChoice(parsing: job.device) else { throw SearchError("device '\(job.device)' is not cpu, cuda, cuda:N or auto") }
        // The batch picks a CUDA backend's layout (CUDALayout.standard(forBatch:)).
        let backend = try WarmBackends.make(choice, threads: job.threads, strictFP32: false,
                                              batchSize: job.train?.batchSize ?? job.trial?.batchSize,
                                              precision: job.runPrecision, notice: { _ in })
        if let config = job.train { return try trainSegment(job, config: config, backend: backend) }
        guard let trial = job.trial else { throw SearchError("\(job.directory)/job.json names neither a trial nor a training") }
        let directory = RunDirectory(path: job.runDirectory)
        if job.untilEpoch != nil {
            // A pruned search: the trial trains in segments up to each rung, as an hpo trial.
            if directory.exists(directory.configPath) { return try trainSegment(job, config: nil, backend: backend) }
            return try trainSegment(job, config: newTrial(job, trial).config, backend: backend)
        }
        let run: TrainingRun
        // Interrupted earlier: continue from the trial's own last checkpoint, if it got one. The
        // mode is said, not inferred from the epoch: a trial killed after its config.json and
        // before its first checkpoint resumes at epoch 0 (as a new run it met "is not empty").
        let resuming = directory.exists(directory.configPath)
        if resuming {
            run = try TrainingRun.resume(from: directory, backend: backend)
        } else {
            let (config, data) = try newTrial(job, trial)
            run = try TrainingRun(config: config, backend: backend, data: data)
        }
        run.testsLastEpoch = false   // the outcome reports the best checkpoint's test accuracy only
        let fitCPU = processCPUSeconds()
        let summary = try run.fit(in: directory, mode: resuming ? .resume : .new)
        // In the trial's stdout.log: what bench/warm-workers.sh counts as training (CPU time, unlike
        // `seconds`, holds on a loaded machine); the rest of the job's CPU is per-trial overhead.
        print("fit_cpu_seconds \(processCPUSeconds() - fitCPU)")
        return wholeOutcome(job, run: run, summary: summary)
    }

    /// The outcome of a whole search trial (no segments) that trained to its end.
    static func wholeOutcome(_ job: TrialJob, run: TrainingRun, summary: RunSummary) -> TrialOutcome {
        // Diverged: a loss that is not finite or 100x that of guessing uniformly (ln K per image).
        let limit = 100 * log(Double(max(2, run.data.train.classes)))
        func diverged(_ x: Double) -> Bool { !x.isFinite || x > limit }
        if let bad = run.history.first(where: { diverged($0.trainLoss) || diverged($0.validationLoss ?? 0) }) {
            return TrialOutcome(id: job.id, status: .failed,
                                error: "diverged: training loss \(bad.trainLoss), validation loss \(bad.validationLoss ?? .nan) at epoch \(bad.epoch)",
                                seconds: summary.totalSeconds, flopsExecuted: summary.cumulativeTrainingFlops,
                                flopsSkipped: summary.skippedFlops, epochs: summary.epochs)
        }
        let validationLoss = run.history.compactMap(\.validationLoss).min()
        let validationAccuracy = run.history.compactMap(\.validationAccuracy).max()
        // The summary's test figure is already the best checkpoint's (as `strata eval`'s).
        let testAccuracy = summary.testAccuracy
        return TrialOutcome(id: job.id, status: .finished, validationLoss: validationLoss,
                            validationAccuracy: validationAccuracy, testAccuracy: testAccuracy,
                            seconds: summary.totalSeconds, flopsExecuted: summary.cumulativeTrainingFlops,
                            flopsSkipped: summary.skippedFlops, epochs: summary.epochs)
    }

    /// A search trial's training config, from its data's shape and classes, and that data.
    static func newTrial(_ job: TrialJob, _ trial: TrialConfig) throws -> (config: TrainConfig, data: RunData) {
        let data = try RunData.load(job.data, seed: trial.seed)
        let shape = ImageShape(channels: data.train.channels, height: data.train.height, width: data.train.width)
        let config = try trial.trainConfig(data: job.data, input: shape, classes: data.train.classes,
                                           device: job.device, reuse: job.reuse, precision: job.runPrecision)
        return (config, data)
    }

    /// An explicit training (`job.train`) up to `job.targetEpoch`: a new run, or the one in the
    /// trial's `run/` continued from its last checkpoint (bit-identical to a run never stopped).
    /// Below the last epoch every epoch is committed as `fit` does but the run is left
    /// incomplete; at the last one `fit` writes `summary.json` and completes it. The test set is
    /// dropped (hyperparameters are chosen on validation alone) unless the job keeps it: the hpo's
    /// final training, whose `summary.json` and outcome carry the test accuracy.
    static func trainSegment(_ job: TrialJob, config: TrainConfig?, backend: Backend) throws -> TrialOutcome {
        let directory = RunDirectory(path: job.runDirectory)
        // A resumed segment reads its config and data from the folder (its config.json wins over the job's).
        guard let config = try config ?? (directory.exists(directory.configPath)
                                          ? directory.readJSON(TrainConfig.self, from: directory.configPath) : nil) else {
            throw SearchError("\(directory.path) has no config.json to continue")
        }
        let (run, summary) = try TrainingRun.fitSegment(in: directory, config: config, backend: backend,
                                                        until: job.untilEpoch, testSet: job.keepTestSet == true)
        return segmentOutcome(job, run: run, summary: summary)
    }

    /// The outcome of a segment (or an explicit training) that trained up to its epoch.
    static func segmentOutcome(_ job: TrialJob, run: TrainingRun, summary: RunSummary?) -> TrialOutcome {
        func finite(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }
        let last = run.history.last
        return TrialOutcome(id: job.id, status: .finished, validationLoss: finite(last?.validationLoss),
                            validationAccuracy: finite(last?.validationAccuracy), testAccuracy: finite(summary?.testAccuracy),
                            seconds: run.history.reduce(0) { $0 + $1.seconds }, flopsExecuted: run.cumulativeFlops,
                            flopsSkipped: run.skippedFlops, epochs: run.epoch,
                            validationLosses: run.history.map { finite($0.validationLoss) },
                            validationAccuracies: run.history.map { finite($0.validationAccuracy) })
    }

    /// In a worker process: ends it when the search process that started it goes away (kill -9
    /// included), so a resumed search never has two processes writing one trial directory.
    /// `parent` is the pid the search passed in `STRATA_SEARCH_PARENT`.
    public static func exitWithParent(_ parent: Int32) {
        watchedParent = parent
        if getppid() != parent { _exit(137) }
        var thread = pthread_t()
        _ = pthread_create(&thread, nil, { _ in
            while true {
                if getppid() != watchedParent { _exit(137) }
                usleep(200_000)
            }
        }, nil)
    }
}

nonisolated(unsafe) private var watchedParent: Int32 = 0

/// User + system CPU seconds of this process so far, all threads.
func processCPUSeconds() -> Double {
    var usage = rusage()
    guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
