/// An hpo's trials for the study engine: numbered from 0 as Optuna's, each proposed by the
/// sampler from every settled result (journaled `proposed`), trained in segments up to the
/// pruner's next rung or the budget, the pruner deciding after each (promoted trials go before
/// new ones, so with one worker the trials run exactly as one sequential loop).
///
/// Replaying the journal rebuilds the pruner's rungs exactly as they were: every value in the
/// order it was first reported; a trial still `running` is what a resume continues first.
final class HPOTrials: StudyTrials {
    let run: HPORun
    let space: HPOSpace
    let sampler: HPOSampler
    var pruner: TrialPruner?
    let progress: (String) -> Void
    /// The latest event of each trial (its state), and the epochs each has reported to the pruner.
    private(set) var latest: [Int: StudyEvent] = [:]
    private var reported: [Int: Int] = [:]
    private var next: Int
    /// Trials cut short by an interruption, in trial order (ids).
    let interrupted: [String]
    private var numbers: [String: Int] = [:]

    init(_ run: HPORun, progress: @escaping (String) -> Void) throws {
        self.run = run
        self.progress = progress
        space = try run.config.space()
        sampler = run.config.makeSampler()
        pruner = run.config.makePruner()
        for line in run.lines {
            let t = line.trialNumber, values = line.objectives
            let from = reported[t] ?? 0
            for e in from..<max(from, values.count) { _ = pruner?.report(trial: t, step: e + 1, value: values[e]) }
            reported[t] = max(from, values.count)
            latest[t] = line
        }
        next = (latest.keys.max() ?? -1) + 1
        interrupted = latest.values.filter { $0.status == .running }.map(\.trialNumber).sorted().map(HPORun.trialID)
        for t in latest.keys { numbers[HPORun.trialID(t)] = t }
    }

    var isExhausted: Bool { next >= run.config.trials }

    func propose(limit: Int) throws -> [String] {
        guard next < run.config.trials else { return [] }
        // One at a time: each proposal sees every result so far.
        let t = next
        next += 1
        let history = latest.keys.sorted().compactMap { latest[$0]!.observation }
        let params = sampler.suggest(space, history: history, trialNumber: t)
        var proposed = StudyEvent(.proposed, trial: HPORun.trialID(t))
        proposed.number = t
        proposed.params = params
        proposed.values = []
        proposed.seconds = 0
        try run.journal(proposed)
        latest[t] = proposed
        numbers[HPORun.trialID(t)] = t
        return [HPORun.trialID(t)]
    }

    func dependencies(of id: String) -> [String] { [] }

    func job(for id: String) throws -> TrialJob? {
        let t = numbers[id]!
        do {
            let job = try run.makeJob(latest[t]!, after: reported[t] ?? 0, pruner: pruner)
            if latest[t]!.event == .proposed {
                // Its first job, as a search's: `started`.
                let started = latest[t]!.next(.started)
                try run.journal(started)
                latest[t] = started
            }
            return job
        } catch {
            // A full disk or a refused write is the machine's fault, not the trial's.
            if InfrastructureFault.describe(error) != nil { throw error }
            // Hyperparameters this data or model cannot train with: the trial fails, the search goes on.
            var failed = latest[t]!.next(.failed)
            failed.error = "\(error)"
            try record(failed)
            return nil
        }
    }

    func ended(_ id: String, outcome: TrialOutcome, wallSeconds wall: Double) throws -> StudyStep {
        let t = numbers[id]!
        var r = latest[t]!.next(.rung)
        var step = StudyStep.settled
        r.wallSeconds = (r.wallSeconds ?? 0) + wall
        if let cpu = outcome.cpuSeconds { r.cpuSeconds = (r.cpuSeconds ?? 0) + cpu }
        let accuracies = outcome.validationAccuracies ?? [], losses = outcome.validationLosses ?? []
        let before = reported[t] ?? 0
        if outcome.status == .failed {
            r.event = .failed
            r.error = outcome.error ?? "the trial failed"
        } else if accuracies.count != outcome.epochs || losses.count != outcome.epochs || outcome.epochs <= before {
            r.event = .failed
            r.error = "the worker reported \(accuracies.count) epochs of values for \(outcome.epochs) epochs after \(before)"
        } else {
            var values = zip(accuracies, losses).map { run.objective(accuracy: $0, loss: $1) }
            var decision = PruneDecision.continue
            for e in before..<values.count where decision == .continue {
                decision = pruner?.report(trial: t, step: e + 1, value: values[e]) ?? .continue
                if decision == .prune { values = Array(values.prefix(e + 1)) }
            }
            reported[t] = values.count
            r.values = values.map { $0.isNaN ? nil : $0 }
            r.validationAccuracy = accuracies[values.count - 1]
            r.validationLoss = losses[values.count - 1]
            r.seconds = outcome.seconds
            r.rungs = (r.rungs ?? []) + [values.count]
            if values.count >= run.config.trial.epochs {
                r.event = .finished   // a decision at the budget stops nothing
            } else if decision == .prune {
                r.event = .pruned
            } else {
                step = .promoted
            }
        }
        try record(r)
        return step
    }

    func counts() -> (done: Int, failed: Int) {
        let settled = latest.values.filter { $0.status != .running }
        return (settled.count, settled.filter { $0.status == .failed }.count)
    }

    private func record(_ r: StudyEvent) throws {
        try run.journal(r)
        latest[r.trialNumber] = r
        run.refreshReport(Array(latest.values))
        let params = r.params ?? [:], values = r.objectives
        let shown = params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: " ")
        let what = r.status == .running ? "promoted at epoch \(values.count)" : "\(r.hpoStatus) after \(plural(values.count, "epoch"))"
        // Numbered as in trials/trial-NNNN, the journal and summary.json (from 0, as Optuna's trial.number).
        progress("trial \(r.trialNumber) (\(latest.count)/\(run.config.trials)) \(what): \(run.scoreText(values.last)) "
                 + "(\(shown), \(formatSeconds(r.cost)))" + (r.error.map { " " + $0 } ?? ""))
    }
}
