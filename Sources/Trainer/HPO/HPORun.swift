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

/// An hpo trial's state after one of its journal events (`StudyEvent`: `studyEvent` is the line
/// it is written as, `init?(_:)` reads one back; journals of the older format held these as lines
/// themselves, camelCase, `complete` for finished). A trial's first event is written when it is proposed (status
/// `running`, no values), one more each time its job ends at a rung and the pruner lets it go
/// on (`running`, its values so far), and its last when it ends (`complete`, `pruned`, `failed`);
/// the last line of a trial is its state. Replaying the lines in order rebuilds the pruner's
/// rungs exactly as they were, and a trial still `running` is what a resume continues.
public struct HPOTrialRecord: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable { case running, complete, pruned, failed }
    public var trial: Int
    public var params: [String: HPOValue]
    public var status: Status
    /// The objective after each trained epoch (minimised: -accuracy or loss).
    public var values: [Double]
    public var validationAccuracy: Double?
    public var validationLoss: Double?
    /// Seconds of its training epochs (validation included), as its run recorded them.
    public var seconds: Double
    /// Wall seconds of its jobs, summed over its segments (worker start and data loading
    /// included); nil in journals written before the search engine ran hpo trials.
    public var wallSeconds: Double?
    /// CPU seconds of its jobs (user + system, all threads), summed over its segments.
    public var cpuSeconds: Double?
    /// The epochs at which its jobs ended: each a rung the pruner decided at, or the budget.
    public var rungs: [Int]?
    public var error: String?

    public init(trial: Int, params: [String: HPOValue], status: Status, values: [Double], validationAccuracy: Double? = nil,
                validationLoss: Double? = nil, seconds: Double, wallSeconds: Double? = nil, rungs: [Int]? = nil, error: String? = nil) {
        self.trial = trial
        self.params = params
        self.status = status
        self.values = values
        self.validationAccuracy = validationAccuracy
        self.validationLoss = validationLoss
        self.seconds = seconds
        self.wallSeconds = wallSeconds
        self.rungs = rungs
        self.error = error
    }

    /// What the sampler learns from this trial (running and failed trials teach nothing).
    var observation: HPOObservation? {
        guard status == .complete || status == .pruned, let last = values.last, last.isFinite else { return nil }
        return HPOObservation(params: params, value: last)
    }

    /// The compute this trial cost: its jobs' wall seconds (training seconds for old journals).
    public var cost: Double { wallSeconds ?? seconds }
}

/// The final training's state after one of its journal events (`final_started`,
/// `final_finished`, `final_failed`; in the older format a line `"event": "final"`). `started` when its job is submitted (`fromEpoch`: the epochs its run directory
/// already holds, which the job continues from), then `finished` (its epochs' seconds over every
/// session, this job's wall and CPU seconds, test accuracy and loss) or `failed` (the error;
/// `--resume` submits it again, continuing from its last checkpoint).
public struct HPOFinalRecord: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable { case started, finished, failed }
    public var event = "final"
    public var status: Status
    /// The winner whose hyperparameters the full model trains with.
    public var trial: Int
    public var params: [String: HPOValue]
    public var epochs: Int
    public var fromEpoch: Int?
    public var seconds: Double?
    public var wallSeconds: Double?
    public var cpuSeconds: Double?
    public var testAccuracy: Double?
    public var testLoss: Double?
    public var error: String?

    public init(status: Status, trial: Int, params: [String: HPOValue], epochs: Int, fromEpoch: Int? = nil) {
        self.status = status
        self.trial = trial
        self.params = params
        self.epochs = epochs
        self.fromEpoch = fromEpoch
    }
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
    public private(set) var records: [HPOTrialRecord] = []
    /// Where trials run (default: one at a time in this process).
    public var executor: TrialExecutor = InProcessExecutor()
    /// CPU threads of each trial's backend.
    public var threadsPerTrial = 1
    /// CPU threads of the final training's job (it runs alone: default `threadsPerTrial`).
    public var threadsForFinal: Int?
    /// The journal's trial lines in order (the pruner's history is replayed from them).
    private(set) var lines: [HPOTrialRecord] = []
    /// The journal's final-training lines in order.
    public private(set) var finalEvents: [HPOFinalRecord] = []
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
                                    + "pass --resume \(directory.path) to continue it, or choose another --output")
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
        lines = all.compactMap { if case .trial(let r) = $0 { return r } else { return nil } }
        finalEvents = all.compactMap { if case .final(let r) = $0 { return r } else { return nil } }
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
    static func readJournal(_ path: String) throws -> [HPOTrialRecord] {
        try readJournalLines(path).compactMap { if case .trial(let r) = $0 { return r } else { return nil } }
    }

    /// The final training's lines of the journal.
    static func readFinalEvents(_ path: String) throws -> [HPOFinalRecord] {
        try readJournalLines(path).compactMap { if case .final(let r) = $0 { return r } else { return nil } }
    }

    public enum JournalLine {
        case trial(HPOTrialRecord)
        case final(HPOFinalRecord)
    }

    /// The journal's lines; a line cut by a kill is the last one and is dropped (the next
    /// append cuts it off the file), anything else that does not parse or is not valid as data
    /// (`problems`) is corruption, reported one line per problem. `trials`: the run's trial
    /// count (trial numbers must lie below it).
    static func readJournalLines(_ path: String, trials: Int? = nil) throws -> [JournalLine] {
        guard FileSystem.kind(of: path) != nil else { return [] }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch { throw RunDirectoryError(path: path, reason: "cannot be read: \(error)") }
        return try parseJournal(bytes, file: path, trials: trials)
    }

    /// `readJournalLines` of a journal's bytes (`file` names it in errors): `StudyEvent` lines,
    /// and lines of the format before it (`HPOTrialRecord`, `HPOFinalRecord`) converted.
    public static func parseJournal(_ bytes: [UInt8], file: String, trials: Int? = nil) throws -> [JournalLine] {
        struct Legacy: Decodable { var event: String? }
        let decoder = RunDirectory.decoder
        let events = try StudyJournal.events(bytes, file: file, trials: trials) { line in
            do {
                switch try decoder.decode(Legacy.self, from: Data(line)).event {
                case nil: return try decoder.decode(HPOTrialRecord.self, from: Data(line)).studyEvent
                case "final": return try decoder.decode(HPOFinalRecord.self, from: Data(line)).studyEvent
                case let event?: throw SearchError("an unknown event '\(event)'")
                }
            } catch let error as DecodingError {
                throw SearchError("is not valid: \(describe(error))")
            }
        }
        var problems = StudyDataProblems()
        var out: [JournalLine] = []
        for e in events {
            if e.event.isFinal, let r = HPOFinalRecord(e) { out.append(.final(r)) }
            else if let r = HPOTrialRecord(e) { out.append(.trial(r)) }
            else { problems.add(file, "a search event (\(e.event.rawValue) of \(e.trial)) is no hpo trial: not a strata hpo journal") }
        }
        try problems.throwIfAny()
        return out
    }

    static func latest(_ lines: [HPOTrialRecord]) -> [HPOTrialRecord] {
        var byTrial: [Int: HPOTrialRecord] = [:]
        for r in lines { byTrial[r.trial] = r }
        return byTrial.keys.sorted().map { byTrial[$0]! }
    }

    /// Appends one line (fsync'd; a torn last line is cut off first) and notes it.
    func journal(_ record: HPOTrialRecord) throws {
        try appendJournalLine(record.studyEvent)
        lines.append(record)
    }

    func journal(_ record: HPOFinalRecord) throws {
        try appendJournalLine(record.studyEvent)
        finalEvents.append(record)
    }

    private func appendJournalLine(_ event: StudyEvent) throws {
        try event.append(to: journalPath)
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
    func makeJob(_ r: HPOTrialRecord, after step: Int, pruner: TrialPruner?) throws -> TrialJob {
        let trialConfig = try HPOParameter.apply(r.params, to: config.trial)
        try ConfigValidation.check(trialConfig, data: DataFacts(data), source: .file(configPath))
        let until = min(pruner?.decisionStep(trial: r.trial, after: step) ?? trialConfig.epochs, trialConfig.epochs)
        let folder = trialDirectory(r.trial)
        try makeDirectory(folder)
        let job = TrialJob(id: Self.trialID(r.trial), trial: nil, data: trialConfig.data, device: trialConfig.device,
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
        var summary = HPOSummary(trials: records.count, complete: records.filter { $0.status == .complete }.count,
                                 pruned: records.filter { $0.status == .pruned }.count,
                                 failed: records.filter { $0.status == .failed }.count,
                                 searchSeconds: records.reduce(0) { $0 + $1.cost },
                                 trainingSeconds: records.reduce(0) { $0 + $1.seconds },
                                 searchCPUSeconds: records.contains { $0.cpuSeconds != nil } ? records.reduce(0) { $0 + ($1.cpuSeconds ?? 0) } : nil,
                                 searchWallSeconds: sessionSeconds(),
                                 trialEpochs: records.reduce(0) { $0 + $1.values.count },
                                 trialModel: config.trial.modelName,
                                 trialParameters: trialModel.parameterCount, trialFlopsPerImage: trialModel.cost.forward)
        // The winner among trials that ran their whole budget (a pruned trial's value is of an earlier epoch).
        let candidates = records.filter { $0.status == .complete && ($0.values.last?.isFinite ?? false) }
        guard let best = candidates.min(by: { $0.values.last! < $1.values.last! }) else {
            try directory.writeJSON(summary, to: directory.summaryPath)
            try writeReport(summary)
            throw HPOError("no trial completed (\(summary.pruned) pruned, \(summary.failed) failed): nothing to train")
        }
        summary.bestTrial = best.trial
        summary.bestParams = best.params
        summary.bestScore = config.objective == .accuracy ? -best.values.last! : best.values.last!
        if config.finalEpochs > 0 {
            var final = try HPOParameter.apply(best.params, to: config.final)
            final.epochs = config.finalEpochs
            let s: RunSummary
            if hasInProcessFinal {
                progress("final: \(final.modelName) with trial \(best.trial)'s hyperparameters for \(plural(final.epochs, "epoch"))")
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
    func trainFinal(_ final: TrainConfig, winner: HPOTrialRecord, progress: (String) -> Void) throws -> RunSummary {
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
            var event = HPOFinalRecord(status: .finished, trial: winner.trial, params: winner.params, epochs: final.epochs)
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
                           cacheBudget: 0, attempt: finalEvents.filter { $0.status == .started }.count + 1, train: final,
                           untilEpoch: nil, keepTestSet: true)
        try SearchJSON.write(job, to: folder + "/job.json")
        let from = run.exists(run.manifestPath) ? (try run.readJSON(RunManifest.self, from: run.manifestPath)).epoch : 0
        var event = HPOFinalRecord(status: .started, trial: winner.trial, params: winner.params, epochs: final.epochs, fromEpoch: from)
        try journal(event)
        progress("final: \(final.modelName) with trial \(winner.trial)'s hyperparameters for \(plural(final.epochs, "epoch"))"
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
            event.status = .failed
            event.error = outcome.error ?? "the job ended after \(outcome.epochs) of \(final.epochs) epochs without \(run.summaryPath)"
            try journal(event)
            throw HPOError("the final training failed: \(event.error!); `strata hpo --resume \(directory.path)` continues it "
                           + "from its last checkpoint in \(run.path)")
        }
        event.status = .finished
        event.seconds = summary.totalSeconds
        event.testAccuracy = summary.testAccuracy
        event.testLoss = summary.testLoss
        try journal(event)
        return summary
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

extension HPOTrialRecord {
    /// Its journal line: the event that brought the trial to this state (a nan value is null).
    public var studyEvent: StudyEvent {
        let kind: StudyEvent.Kind
        switch status {
        case .complete: kind = .finished
        case .pruned: kind = .pruned
        case .failed: kind = .failed
        case .running: kind = values.isEmpty ? .proposed : .rung
        }
        var e = StudyEvent(kind, trial: StudyEvent.hpoID(trial))
        e.number = trial
        e.params = params
        e.values = values.map { $0.isNaN ? nil : $0 }
        e.validationAccuracy = validationAccuracy
        e.validationLoss = validationLoss
        e.seconds = seconds
        e.wallSeconds = wallSeconds
        e.cpuSeconds = cpuSeconds
        e.rungs = rungs
        e.error = error
        return e
    }

    /// The trial's state after a (checked) hpo trial event; nil for a search's or a final's.
    public init?(_ e: StudyEvent) {
        guard let number = e.number, let params = e.params, !e.event.isFinal else { return nil }
        let status: Status
        switch e.event {
        case .finished: status = .complete
        case .pruned: status = .pruned
        case .failed: status = .failed
        default: status = .running
        }
        self.init(trial: number, params: params, status: status, values: (e.values ?? []).map { $0 ?? .nan },
                  validationAccuracy: e.validationAccuracy, validationLoss: e.validationLoss, seconds: e.seconds ?? 0,
                  wallSeconds: e.wallSeconds, rungs: e.rungs, error: e.error)
        cpuSeconds = e.cpuSeconds
    }
}

extension HPOFinalRecord {
    public var studyEvent: StudyEvent {
        let kind: StudyEvent.Kind
        switch status {
        case .started: kind = .finalStarted
        case .finished: kind = .finalFinished
        case .failed: kind = .finalFailed
        }
        var e = StudyEvent(kind, trial: StudyEvent.hpoID(trial))
        e.number = trial
        e.params = params
        e.epochs = epochs
        e.fromEpoch = fromEpoch
        e.seconds = seconds
        e.wallSeconds = wallSeconds
        e.cpuSeconds = cpuSeconds
        e.testAccuracy = testAccuracy
        e.testLoss = testLoss
        e.error = error
        return e
    }

    /// The final training's state after a (checked) final event; nil for any other.
    public init?(_ e: StudyEvent) {
        guard let number = e.number, let params = e.params, let epochs = e.epochs else { return nil }
        let status: Status
        switch e.event {
        case .finalStarted: status = .started
        case .finalFinished: status = .finished
        case .finalFailed: status = .failed
        default: return nil
        }
        self.init(status: status, trial: number, params: params, epochs: epochs, fromEpoch: e.fromEpoch)
        seconds = e.seconds
        wallSeconds = e.wallSeconds
        cpuSeconds = e.cpuSeconds
        testAccuracy = e.testAccuracy
        testLoss = e.testLoss
        error = e.error
    }
}
