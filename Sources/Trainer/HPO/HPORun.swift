import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Everything an HPO run needs to be resumed: written to `hpo.json` in its directory.
public struct HPOConfig: Codable, Equatable, Sendable {
    public enum SamplerKind: String, Codable, Sendable { case tpe, random, cmaes }
    public typealias PrunerKind = StudyPrunerKind
    public enum Objective: String, Codable, Sendable {
        /// Maximise validation accuracy (the samplers and pruners minimise its negative).
        case accuracy
        /// Minimise validation loss.
        case loss
    }

    /// The model trials train (the proxy's spec with `--proxy`), data, optimizer and seed;
    /// `epochs` is the per-trial budget.
    public var trial: TrainConfig
    /// The full model, trained once with the winner for `finalEpochs`.
    public var final: TrainConfig
    public var names: [String]
    public var dimensions: [HPODimension]
    public var sampler: SamplerKind
    public var pruner: PrunerKind
    public var objective: Objective
    public var trials: Int
    public var finalEpochs: Int
    /// The proxy's pruning plan, when trials train a pruned proxy.
    public var proxy: String?
    /// Workers, threads and engine of the first session (nil in runs from before it was
    /// stored): what `--resume` uses unless told otherwise (`HPORun.storeExecution`).
    public var execution: StudyExecution?

    public init(trial: TrainConfig, final: TrainConfig, space: HPOSpace, sampler: SamplerKind, pruner: PrunerKind,
                objective: Objective, trials: Int, finalEpochs: Int, proxy: String?) {
        self.trial = trial
        self.final = final
        names = space.names
        dimensions = space.dimensions
        self.sampler = sampler
        self.pruner = pruner
        self.objective = objective
        self.trials = trials
        self.finalEpochs = finalEpochs
        self.proxy = proxy
    }

    public func space() throws -> HPOSpace { try HPOSpace(Array(zip(names, dimensions))) }

    func makeSampler() -> HPOSampler {
        switch sampler {
        case .tpe: return TPESampler(seed: trial.seed)
        case .random: return UniformSampler(seed: trial.seed)
        case .cmaes: return CMAESSampler(seed: trial.seed)
        }
    }

    func makePruner() -> TrialPruner? { pruner.make(budget: trial.epochs) }
}

/// `summary.json` of an HPO run.
public struct HPOSummary: Codable, Equatable, Sendable {
    public var trials: Int
    public var complete: Int
    public var pruned: Int
    public var failed: Int
    public var bestTrial: Int?
    public var bestParams: [String: HPOValue]?
    /// The best trial's objective in the objective's own sense (accuracy, or loss).
    public var bestScore: Double?
    /// The search's compute: the trials' wall seconds summed (with one worker, the search's wall
    /// time less the driver's own moments; with several, more than the wall time).
    public var searchSeconds: Double
    /// Seconds of the trials' training epochs summed (no worker start, no data loading).
    public var trainingSeconds: Double?
    /// CPU seconds of the trials' jobs summed (user + system, all threads): the search's compute,
    /// far less moved than wall time by other processes on a shared machine.
    public var searchCPUSeconds: Double?
    /// Wall seconds of the search sessions that ended normally (`sessions.jsonl`).
    public var searchWallSeconds: Double?
    /// Epochs trained over all trials.
    public var trialEpochs: Int?
    public var finalSeconds: Double?
    public var finalTestAccuracy: Double?
    public var finalTestLoss: Double?
    public var trialModel: String
    public var trialParameters: Int
    public var trialFlopsPerImage: Double
}

/// Hyperparameter search with a sampler (TPE or random) and early stopping (ASHA, Hyperband),
/// on the full model or a pruned proxy, then one training of the full model with the winner.
///
/// Trials run through the search engine's executors (`executor`: worker processes, Ray, or in
/// this process), as `TrialJob`s carrying the trial's `TrainConfig`. Early stopping works in
/// segments: a job trains its trial up to the next epoch at which the pruner decides (rung
/// 1, 3, 9, ... of ASHA, of the trial's bracket with Hyperband, or the budget); when it ends,
/// the pruner hears its validation values and either stops the trial (pruned) or promotes it,
/// and the next job continues the trial's run directory from its checkpoint (bit-identical to
/// a run never stopped). Decisions are taken as results arrive (asynchronous, as ASHA is), no
/// worker ever waits for a rung to fill, and no running worker needs a signal. A promoted trial
/// goes before new ones, so with one worker the trials run exactly as one sequential loop.
///
/// Every event ends with an fsync'd line in `journal.jsonl`; `resume` redoes no finished work:
/// finished trials stay, the pruner's rungs are replayed from the journal in its order, a trial
/// that was running continues from its checkpoint with the hyperparameters it was proposed
/// with, and new trials come from the sampler (a function of seed, trial number and history).
public final class HPORun {
    public private(set) var config: HPOConfig
    public let directory: RunDirectory
    public let backend: Backend
    public let data: RunData
    /// The latest state of each trial, in trial order.
    public private(set) var records: [StudyEvent] = []
    /// Where trials run (default: one at a time in this process).
    public var executor: TrialExecutor = InProcessExecutor()
    /// CPU threads of each trial's backend.
    public var threadsPerTrial = 1
    /// CPU threads of the final training's job (it runs alone: default `threadsPerTrial`).
    public var threadsForFinal: Int?
    /// The journal's trial lines in order (the pruner's history is replayed from them).
    private(set) var lines: [StudyEvent] = []
    /// The journal's final-training lines in order.
    public private(set) var finalEvents: [StudyEvent] = []
    private let lock: RunLock

    public var journalPath: String { directory.path + "/journal.jsonl" }
    public var configPath: String { directory.path + "/hpo.json" }
    public var reportPath: String { directory.path + "/report.html" }
    public var sessionsPath: String { directory.path + "/sessions.jsonl" }
    /// The final training's folder, a job's like a trial's: `job.json`, `outcome.json`, the
    /// worker's logs, and `run/`, its run directory.
    public var finalJobDirectory: String { directory.path + "/final" }
    /// The final training's run directory (`final/run`; `final` itself in a directory whose
    /// final was trained in the search process, before it became a job).
    public var finalDirectory: RunDirectory {
        RunDirectory(path: hasInProcessFinal ? finalJobDirectory : finalJobDirectory + "/run")
    }
    /// A final trained (or begun) in the search process by an earlier strata: it is finished there.
    var hasInProcessFinal: Bool { FileSystem.kind(of: finalJobDirectory + "/manifest.json") == .file }
    /// A trial's folder: `job.json`, `outcome.json`, the worker's logs, `run/` (its run directory).
    public func trialDirectory(_ trial: Int) -> String { directory.path + "/trials/" + Self.trialID(trial) }

    static func trialID(_ trial: Int) -> String { StudyEvent.hpoID(trial) }

    /// A new run in an empty (or absent) directory: the folder policy of every study
    /// (`OutputPolicy`; the CLI's --overwrite has emptied it first); an hpo already there is
    /// continued with `init(resuming:)`.
    public init(config: HPOConfig, directory: RunDirectory, backend: Backend, data: RunData) throws {
        let study = StudyDirectory(path: directory.path, study: .hpo)
        (_, lock) = try study.openNew(config, file: Self.settingsFile(directory)) { _ in
            throw RunDirectoryError(path: directory.path, reason: "is not empty: it holds an hpo search (hpo.json); "
                                    + "pass --resume \(directory.path) to continue it, --overwrite to replace it, or choose another --output")
        }
        self.config = config
        self.directory = directory
        self.backend = backend
        self.data = data
    }

    /// How `hpo.json` is read and written.
    static func settingsFile(_ directory: RunDirectory) -> StudyDirectory.SettingsFile<HPOConfig> {
        StudyDirectory.SettingsFile(read: { try directory.readJSON(HPOConfig.self, from: $0) },
                                    write: { try directory.writeJSON($0, to: $1) })
    }

    /// Reopens a run written by `init`: its config and journal.
    public init(resuming directory: RunDirectory, backend: Backend) throws {
        let study = StudyDirectory(path: directory.path, study: .hpo)
        (config, lock) = try study.openExisting(file: Self.settingsFile(directory)) { config in
            var out: [String] = []
            if config.trials < 1 || config.trials > 1_000_000 { out.append("trials \(config.trials) is not in 1...1000000") }
            if config.finalEpochs < 0 || config.finalEpochs > 1_000_000 { out.append("finalEpochs \(config.finalEpochs) is not in 0...1000000") }
            return out + (config.execution?.problems() ?? [])
        }
        self.directory = directory
        self.backend = backend
        data = try RunData.load(config.trial.data, seed: config.trial.seed)
        let all = try Self.readJournalLines(study.journalPath, trials: config.trials)
        _ = try StudySession.read(study.sessionsPath)   // refuse a corrupt file before any work
        lines = all.filter { !$0.event.isFinal }
        finalEvents = all.filter(\.event.isFinal)
        records = Self.latest(lines)
    }

    /// Records how the trials run (`hpo.json`), once: a resumed run keeps what its first
    /// session stored (the caller says when it runs otherwise).
    public func storeExecution(_ execution: StudyExecution) throws {
        guard config.execution == nil else { return }
        config.execution = execution
        try directory.writeJSON(config, to: configPath)
    }

    /// The journal's trial lines (the final training's are left out).
    static func readJournal(_ path: String) throws -> [StudyEvent] {
        try readJournalLines(path).filter { !$0.event.isFinal }
    }

    /// The final training's lines of the journal.
    static func readFinalEvents(_ path: String) throws -> [StudyEvent] {
        try readJournalLines(path).filter(\.event.isFinal)
    }

    /// The journal's events; a line cut by a kill is the last one and is dropped (the next
    /// append cuts it off the file), anything else that does not parse or is not valid as data
    /// (`StudyEvent.problems`) is corruption, reported one line per problem. `trials`: the run's
    /// trial count (trial numbers must lie below it).
    static func readJournalLines(_ path: String, trials: Int? = nil) throws -> [StudyEvent] {
        guard FileSystem.kind(of: path) != nil else { return [] }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch { throw RunDirectoryError(path: path, reason: "cannot be read: \(error)") }
        return try parseJournal(bytes, file: path, trials: trials)
    }

    /// `readJournalLines` of a journal's bytes (`file` names it in errors): `StudyEvent` lines,
    /// and lines of the format before it converted (`legacyEvent`).
    public static func parseJournal(_ bytes: [UInt8], file: String, trials: Int? = nil) throws -> [StudyEvent] {
        let events = try StudyJournal.events(bytes, file: file, trials: trials, legacy: legacyEvent)
        var problems = StudyDataProblems()
        for e in events where e.number == nil || e.params == nil {
            problems.add(file, "a search event (\(e.event.rawValue) of \(e.trial)) is no hpo trial: not a strata hpo journal")
        }
        try problems.throwIfAny()
        return events
    }

    /// The latest event of each trial, in trial order.
    static func latest(_ lines: [StudyEvent]) -> [StudyEvent] {
        var byTrial: [Int: StudyEvent] = [:]
        for r in lines { byTrial[r.trialNumber] = r }
        return byTrial.keys.sorted().map { byTrial[$0]! }
    }

    /// Appends one event (fsync'd; a torn last line is cut off first) and notes it.
    func journal(_ event: StudyEvent) throws {
        try event.append(to: journalPath)
        if event.event.isFinal { finalEvents.append(event) } else { lines.append(event) }
    }

    /// Sign convention: samplers and pruners minimise.
    func objective(accuracy: Double?, loss: Double?) -> Double {
        switch config.objective {
        case .accuracy: return -(accuracy ?? .nan)
        case .loss: return loss ?? .nan
        }
    }

    /// Runs the trials left on the study engine, then the final training; `progress` hears one
    /// line per event.
    @discardableResult
    public func run(progress: @escaping (String) -> Void = { _ in }) throws -> HPOSummary {
        try makeDirectory(directory.path + "/trials")
        let trials = try HPOTrials(self, progress: progress)
        let engine = studyEngine()
        engine.recordIdleSessions = false
        try engine.run(trials, first: trials.interrupted)
        records = trials.latest.keys.sorted().map { trials.latest[$0]! }
        return try finish(progress: progress)
    }

    func studyEngine() -> StudyEngine {
        StudyEngine(executor: executor, sessionsPath: sessionsPath, kind: "hpo", resumeCommand: "strata hpo --resume \(directory.path)")
    }

    /// The job that takes trial `r` from epoch `step` to the pruner's next decision (or its budget).
    func makeJob(_ r: StudyEvent, after step: Int, pruner: TrialPruner?) throws -> TrialJob {
        let trialConfig = try HPOParameter.apply(r.params ?? [:], to: config.trial)
        try ConfigValidation.check(trialConfig, data: DataFacts(data), source: .file(configPath))
        let until = min(pruner?.decisionStep(trial: r.trialNumber, after: step) ?? trialConfig.epochs, trialConfig.epochs)
        let folder = trialDirectory(r.trialNumber)
        try makeDirectory(folder)
        let job = TrialJob(id: r.trial, trial: nil, data: trialConfig.data, device: trialConfig.device,
                           threads: threadsPerTrial, directory: folder, donor: nil, reuseLayers: 0, prefixPath: nil,
                           prefixKey: nil, cache: false, cacheBudget: 0, attempt: 1, train: trialConfig, untilEpoch: until)
        try SearchJSON.write(job, to: folder + "/job.json")
        return job
    }

    /// Wall seconds of the sessions in `sessions.jsonl`.
    func sessionSeconds() -> Double? {
        let s = (try? StudySession.read(sessionsPath)) ?? []
        return s.isEmpty ? nil : s.reduce(0) { $0 + $1.seconds }
    }

    /// The winner's full training (resumed if it was interrupted), `summary.json` and `report.html`.
    func finish(progress: (String) -> Void) throws -> HPOSummary {
        let trialModel = try Model(spec: config.trial.model)
        var summary = HPOSummary(trials: records.count, complete: records.filter { $0.status == .finished }.count,
                                 pruned: records.filter { $0.status == .pruned }.count,
                                 failed: records.filter { $0.status == .failed }.count,
                                 searchSeconds: records.reduce(0) { $0 + $1.cost },
                                 trainingSeconds: records.reduce(0) { $0 + ($1.seconds ?? 0) },
                                 searchCPUSeconds: records.contains { $0.cpuSeconds != nil } ? records.reduce(0) { $0 + ($1.cpuSeconds ?? 0) } : nil,
                                 searchWallSeconds: sessionSeconds(),
                                 trialEpochs: records.reduce(0) { $0 + $1.objectives.count },
                                 trialModel: config.trial.modelName,
                                 trialParameters: trialModel.parameterCount, trialFlopsPerImage: trialModel.cost.forward)
        // The winner among trials that ran their whole budget (a pruned trial's value is of an earlier epoch).
        let candidates = records.filter { $0.status == .finished && ($0.objectives.last?.isFinite ?? false) }
        guard let best = candidates.min(by: { $0.objectives.last! < $1.objectives.last! }) else {
            try directory.writeJSON(summary, to: directory.summaryPath)
            try writeReport(summary)
            throw HPOError("no trial completed (\(summary.pruned) pruned, \(summary.failed) failed): nothing to train")
        }
        summary.bestTrial = best.trialNumber
        summary.bestParams = best.params
        summary.bestScore = config.objective == .accuracy ? -best.objectives.last! : best.objectives.last!
        if config.finalEpochs > 0 {
            var final = try HPOParameter.apply(best.params ?? [:], to: config.final)
            final.epochs = config.finalEpochs
            let s: RunSummary
            if hasInProcessFinal {
                progress("final: \(final.modelName) with trial \(best.trialNumber)'s hyperparameters for \(plural(final.epochs, "epoch"))")
                let run = try TrainingRun.resume(from: finalDirectory, backend: backend)
                do { s = try run.fit(in: finalDirectory, mode: .resume) } catch let error as InterruptedError {
                    throw InterruptedError(signal: error.signal, resume: "strata hpo --resume \(directory.path)", detail: error.detail)
                }
            } else {
                s = try trainFinal(final, winner: best, progress: progress)
            }
            // Its epochs' seconds over every session (a resume that finds it done adds nothing).
            summary.finalSeconds = s.totalSeconds
            summary.finalTestAccuracy = s.testAccuracy
            summary.finalTestLoss = s.testLoss
        }
        try directory.writeJSON(summary, to: directory.summaryPath)
        try writeReport(summary)
        return summary
    }

    /// The final training as a job of `executor`, like a trial's (a worker process, a Ray task,
    /// or this process), in `final/`; journaled when it starts and when it ends. A final that
    /// finished is not run again; one cut short (the search or its worker killed) continues
    /// from its run directory's last checkpoint, bit-identical to a run never stopped.
    func trainFinal(_ final: TrainConfig, winner: StudyEvent, progress: (String) -> Void) throws -> RunSummary {
        let run = finalDirectory
        if finalEvents.last?.status == .finished, run.exists(run.summaryPath) {
            return try run.readJSON(RunSummary.self, from: run.summaryPath)
        }
        try ConfigValidation.check(final, data: DataFacts(data), source: .file(configPath))
        let folder = finalJobDirectory
        try makeDirectory(folder)
        let outcomePath = TrialRunner.outcomePath(folder)
        let stored = try? SearchJSON.read(TrialOutcome.self, from: outcomePath)
        // The search was killed after its worker finished: journal what the worker left.
        if let stored, stored.status != .failed, stored.epochs >= final.epochs,
           let summary = try? run.readJSON(RunSummary.self, from: run.summaryPath) {
            var event = finalEvent(.finalFinished, winner: winner, epochs: final.epochs)
            event.seconds = summary.totalSeconds
            event.cpuSeconds = stored.cpuSeconds
            event.testAccuracy = summary.testAccuracy
            event.testLoss = summary.testLoss
            try journal(event)
            return summary
        }
        // A failed attempt's stored outcome would answer the retry: the retry continues the run instead.
        if stored?.status == .failed { unlink(outcomePath) }
        let job = TrialJob(id: "final", trial: nil, data: final.data, device: final.device, threads: threadsForFinal ?? threadsPerTrial,
                           directory: folder, donor: nil, reuseLayers: 0, prefixPath: nil, prefixKey: nil, cache: false,
                           cacheBudget: 0, attempt: finalEvents.filter { $0.event == .finalStarted }.count + 1, train: final,
                           untilEpoch: nil, keepTestSet: true)
        try SearchJSON.write(job, to: folder + "/job.json")
        let from = run.exists(run.manifestPath) ? (try run.readJSON(RunManifest.self, from: run.manifestPath)).epoch : 0
        var event = finalEvent(.finalStarted, winner: winner, epochs: final.epochs)
        event.fromEpoch = from
        try journal(event)
        progress("final: \(final.modelName) with trial \(winner.trialNumber)'s hyperparameters for \(plural(final.epochs, "epoch"))"
                 + (from > 0 ? ", continuing after epoch \(from)" : ""))
        let (outcome, wall) = try studyEngine().runAlone(job, detail: "the final training continues from its last checkpoint in \(run.path)")
        if let fault = outcome.fault {
            throw InfrastructureFault("\(fault); the final training stopped; `strata hpo --resume \(directory.path)` continues it "
                                      + "from its last checkpoint in \(run.path) once that is fixed")
        }
        event.fromEpoch = nil
        event.wallSeconds = wall
        event.cpuSeconds = outcome.cpuSeconds
        var summary: RunSummary?
        if outcome.status != .failed {
            summary = try? run.readJSON(RunSummary.self, from: run.summaryPath)
        }
        guard let summary, outcome.epochs >= final.epochs else {
            event.event = .finalFailed
            event.error = outcome.error ?? "the job ended after \(outcome.epochs) of \(final.epochs) epochs without \(run.summaryPath)"
            try journal(event)
            throw HPOError("the final training failed: \(event.error!); `strata hpo --resume \(directory.path)` continues it "
                           + "from its last checkpoint in \(run.path)")
        }
        event.event = .finalFinished
        event.seconds = summary.totalSeconds
        event.testAccuracy = summary.testAccuracy
        event.testLoss = summary.testLoss
        try journal(event)
        return summary
    }

    /// The final training's event of `kind`, trained with `winner`'s hyperparameters.
    func finalEvent(_ kind: StudyEvent.Kind, winner: StudyEvent, epochs: Int) -> StudyEvent {
        var e = StudyEvent(kind, trial: winner.trial)
        e.number = winner.number
        e.params = winner.params
        e.epochs = epochs
        return e
    }

    func writeReport(_ summary: HPOSummary) throws {
        let html = HPOReport.html(runs: [HPOReport.Entry(name: config.proxy == nil ? "search" : "proxy search", config: config,
                                                         summary: summary, records: records)],
                                  comparison: nil, title: "strata hpo: \(directory.path)")
        try SearchReport.write(html, to: reportPath)
    }

    func scoreText(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "-" }
        return config.objective == .accuracy ? "val_acc \(pct(-v))" : "val_loss \(num(v, 4))"
    }
}

func formatSeconds(_ s: Double) -> String { num(s, 1) + "s" }

extension StudyEvent {
    /// hpo: the trial's number (every hpo event has one: `HPORun.parseJournal` checks it).
    public var trialNumber: Int { number ?? -1 }
    /// hpo: the minimised objective (-accuracy or loss) after each epoch trained, nan where none.
    public var objectives: [Double] { (values ?? []).map { $0 ?? .nan } }
    /// hpo: the state as its report and progress lines name it (`complete` for finished).
    var hpoStatus: String { status == .finished ? "complete" : status.rawValue }
    /// The compute a trial cost: its jobs' wall seconds (training seconds for old journals).
    public var cost: Double { wallSeconds ?? seconds ?? 0 }

    /// What the sampler learns from an hpo trial (running and failed trials teach nothing).
    var observation: HPOObservation? {
        guard status == .finished || status == .pruned, let last = objectives.last, last.isFinite, let params else { return nil }
        return HPOObservation(params: params, value: last)
    }
}

extension HPORun {
    /// A line of the format before `StudyEvent` (no `format` field): a trial's state (camelCase
    /// fields, `complete` for finished, `running` for proposed or promoted) or, with `"event":
    /// "final"`, the final training's.
    static func legacyEvent(_ line: [UInt8]) throws -> StudyEvent {
        enum Status: String, Decodable { case running, complete, pruned, failed, started, finished }
        struct Old: Decodable {
            var event: String?
            var status: Status
            var trial: Int
            var params: [String: HPOValue]
            var values: [Double]?
            var epochs, fromEpoch: Int?
            var validationAccuracy, validationLoss, testAccuracy, testLoss, seconds, wallSeconds, cpuSeconds: Double?
            var rungs: [Int]?
            var error: String?
        }
        struct Probe: Decodable { var event: String? }
        let old: Old
        do {
            if let event = try RunDirectory.decoder.decode(Probe.self, from: Data(line)).event, event != "final" {
                throw SearchError("an unknown event '\(event)'")
            }
            old = try RunDirectory.decoder.decode(Old.self, from: Data(line))
        } catch let error as DecodingError {
            throw SearchError("is not valid: \(describe(error))")
        }
        let kind: StudyEvent.Kind
        switch (old.event, old.status) {
        case (nil, .complete): kind = .finished
        case (nil, .pruned): kind = .pruned
        case (nil, .failed): kind = .failed
        case (nil, .running): kind = (old.values ?? []).isEmpty ? .proposed : .rung
        case ("final", .started): kind = .finalStarted
        case ("final", .finished): kind = .finalFinished
        case ("final", .failed): kind = .finalFailed
        default: throw SearchError("is not valid: status '\(old.status.rawValue)' is not one of a\(old.event == nil ? " trial" : " final")")
        }
        var e = StudyEvent(kind, trial: StudyEvent.hpoID(old.trial))
        e.number = old.trial
        e.params = old.params
        e.values = old.values?.map { $0.isNaN ? nil : $0 }
        (e.epochs, e.fromEpoch, e.rungs, e.error) = (old.epochs, old.fromEpoch, old.rungs, old.error)
        (e.validationAccuracy, e.validationLoss, e.testAccuracy, e.testLoss) = (old.validationAccuracy, old.validationLoss, old.testAccuracy, old.testLoss)
        (e.seconds, e.wallSeconds, e.cpuSeconds) = (old.seconds, old.wallSeconds, old.cpuSeconds)
        return e
    }
}
