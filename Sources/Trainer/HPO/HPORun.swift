import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything an HPO run needs to be resumed: written to `hpo.json` in its directory.
public struct HPOConfig: Codable, Equatable, Sendable {
    public enum SamplerKind: String, Codable, Sendable { case tpe, random }
    public enum PrunerKind: String, Codable, Sendable { case asha, hyperband, none }
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
        }
    }

    func makePruner() -> TrialPruner? {
        switch pruner {
        case .asha: return SuccessiveHalvingPruner(minResource: 1, reductionFactor: 3)
        case .hyperband: return HyperbandPruner(minResource: 1, maxResource: max(1, trial.epochs), reductionFactor: 3)
        case .none: return nil
        }
    }
}

/// One line of `journal.jsonl`: a trial as it ended.
public struct HPOTrialRecord: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable { case complete, pruned, failed }
    public var trial: Int
    public var params: [String: HPOValue]
    public var status: Status
    /// The objective after each trained epoch (minimised: -accuracy or loss).
    public var values: [Double]
    public var validationAccuracy: Double?
    public var validationLoss: Double?
    public var seconds: Double
    public var error: String?

    /// What the sampler learns from this trial (failed trials teach nothing).
    var observation: HPOObservation? {
        guard status != .failed, let last = values.last, last.isFinite else { return nil }
        return HPOObservation(params: params, value: last)
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
    public var searchSeconds: Double
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
/// Trials run one after another in this process (the search engine's workers and Ray executor
/// are where parallel trials belong). Every trial ends with an fsync'd line in `journal.jsonl`;
/// `resume` redoes no finished trial: samplers are functions of (seed, trial number, history),
/// so the remaining trials are the ones an uninterrupted run would have proposed, and the
/// pruner's rungs are replayed from the journal. A trial interrupted mid-way is rerun from its
/// start (trials are short and deterministic on the CPU).
public final class HPORun {
    public let config: HPOConfig
    public let directory: RunDirectory
    public let backend: Backend
    public let data: RunData
    public private(set) var records: [HPOTrialRecord] = []
    private let lock: RunLock

    public var journalPath: String { directory.path + "/journal.jsonl" }
    public var configPath: String { directory.path + "/hpo.json" }
    public var finalDirectory: RunDirectory { RunDirectory(path: directory.path + "/final") }

    /// A new run in an empty (or absent) directory.
    public init(config: HPOConfig, directory: RunDirectory, backend: Backend, data: RunData) throws {
        try directory.create()
        let existing = (FileSystem.contents(ofDirectory: directory.path) ?? []).filter { $0 != RunLock.fileName }
        guard existing.isEmpty else {
            throw RunDirectoryError(path: directory.path, reason: "is not empty (\(existing.sorted().prefix(4).joined(separator: ", "))): "
                                    + "pass --resume \(directory.path) to continue its search, or choose another --output")
        }
        lock = try RunLock(directory: directory.path)
        self.config = config
        self.directory = directory
        self.backend = backend
        self.data = data
        try directory.writeJSON(config, to: configPath)
    }

    /// Reopens a run written by `init`: its config and journal.
    public init(resuming directory: RunDirectory, backend: Backend) throws {
        let path = directory.path + "/hpo.json"
        guard directory.exists(path) else {
            throw RunDirectoryError(path: directory.path, reason: "has no hpo.json: not a strata hpo directory")
        }
        lock = try RunLock(directory: directory.path)
        config = try directory.readJSON(HPOConfig.self, from: path)
        self.directory = directory
        self.backend = backend
        data = try RunData.load(config.trial.data, seed: config.trial.seed)
        if let text = FileManager.default.contents(atPath: directory.path + "/journal.jsonl") {
            let lines = text.split(separator: 0x0A)
            for (i, line) in lines.enumerated() {
                do { records.append(try RunDirectory.decoder.decode(HPOTrialRecord.self, from: Data(line))) } catch {
                    // A line cut by a kill is the last one; anything else is corruption.
                    if i == lines.count - 1 && text.last != 0x0A { break }
                    throw RunDirectoryError(path: directory.path + "/journal.jsonl", reason: "line \(i + 1) is not valid")
                }
            }
        }
    }

    /// Sign convention: samplers and pruners minimise.
    func objective(_ m: EpochMetrics) -> Double {
        switch config.objective {
        case .accuracy: return -(m.validationAccuracy ?? .nan)
        case .loss: return m.validationLoss ?? .nan
        }
    }

    /// Runs the trials left, then the final training; `progress` hears one line per event.
    @discardableResult
    public func run(progress: (String) -> Void = { _ in }) throws -> HPOSummary {
        let space = try config.space()
        let sampler = config.makeSampler()
        var pruner = config.makePruner()
        for r in records {   // replay the rungs of finished trials, in trial order
            for (e, v) in r.values.enumerated() { _ = pruner?.report(trial: r.trial, step: e + 1, value: v) }
        }
        let done = Set(records.map(\.trial))
        for t in 0..<config.trials where !done.contains(t) {
            let params = sampler.suggest(space, history: records.compactMap(\.observation), trialNumber: t)
            let start = monotonicNow()
            var record = HPOTrialRecord(trial: t, params: params, status: .complete, values: [], seconds: 0)
            do {
                let trialConfig = try HPOParameter.apply(params, to: config.trial)
                try ConfigValidation.check(trialConfig, data: DataFacts(data), source: .file(configPath))
                let run = try TrainingRun(config: trialConfig, backend: backend, data: data)
                while !run.isFinished {
                    let m = try run.trainEpoch()
                    let value = objective(m)
                    record.values.append(value)
                    record.validationAccuracy = m.validationAccuracy
                    record.validationLoss = m.validationLoss
                    if pruner?.report(trial: t, step: run.epoch, value: value) == .prune, !run.isFinished {
                        record.status = .pruned
                        break
                    }
                }
            } catch {
                record.status = .failed
                record.error = "\(error)"
            }
            record.seconds = monotonicNow() - start
            try directory.appendJSONLine(record, to: journalPath)
            records.append(record)
            let shown = params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: " ")
            progress("trial \(t + 1)/\(config.trials) \(record.status.rawValue) after \(record.values.count) epochs: "
                     + "\(scoreText(record.values.last)) (\(shown), \(formatSeconds(record.seconds)))")
        }
        return try finish(progress: progress)
    }

    /// The winner's full training (resumed if it was interrupted) and `summary.json`.
    func finish(progress: (String) -> Void) throws -> HPOSummary {
        let searchSeconds = records.reduce(0) { $0 + $1.seconds }
        let trialModel = try Model(spec: config.trial.model)
        var summary = HPOSummary(trials: records.count, complete: records.filter { $0.status == .complete }.count,
                                 pruned: records.filter { $0.status == .pruned }.count,
                                 failed: records.filter { $0.status == .failed }.count,
                                 searchSeconds: searchSeconds, trialModel: config.trial.modelName,
                                 trialParameters: trialModel.parameterCount, trialFlopsPerImage: trialModel.cost.forward)
        // The winner among trials that ran their whole budget (a pruned trial's value is of an earlier epoch).
        let candidates = records.filter { $0.status == .complete && ($0.values.last?.isFinite ?? false) }
        guard let best = candidates.min(by: { $0.values.last! < $1.values.last! }) else {
            try directory.writeJSON(summary, to: directory.summaryPath)
            throw HPOError("no trial completed (\(summary.pruned) pruned, \(summary.failed) failed): nothing to train")
        }
        summary.bestTrial = best.trial
        summary.bestParams = best.params
        summary.bestScore = config.objective == .accuracy ? -best.values.last! : best.values.last!
        if config.finalEpochs > 0 {
            var final = try HPOParameter.apply(best.params, to: config.final)
            final.epochs = config.finalEpochs
            let start = monotonicNow()
            let resuming = finalDirectory.exists(finalDirectory.path + "/manifest.json")
            let run = resuming ? try TrainingRun.resume(from: finalDirectory, backend: backend)
                               : try TrainingRun(config: final, backend: backend, data: data)
            progress("final: \(final.modelName) with trial \(best.trial + 1)'s hyperparameters for \(final.epochs) epochs")
            let s = try run.fit(in: finalDirectory, mode: resuming ? .resume : .new)
            summary.finalSeconds = monotonicNow() - start
            summary.finalTestAccuracy = s.testAccuracy
            summary.finalTestLoss = s.testLoss
        }
        try directory.writeJSON(summary, to: directory.summaryPath)
        return summary
    }

    func scoreText(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "-" }
        return config.objective == .accuracy ? "val_acc \(pct(-v))" : "val_loss \(num(v, 4))"
    }
}

func formatSeconds(_ s: Double) -> String { num(s, 1) + "s" }
