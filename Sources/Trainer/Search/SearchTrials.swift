/// A search's trials for the study engine: what the sampler proposes, planned for reuse (a
/// trial waits for its donor candidates), each run as jobs of its `TrialConfig`, its results
/// `StudyEvent` lines of the journal (each trial's latest event is its state). Trials the journal holds are skipped (or, with
/// `retryFailed`, failed ones and those depending on them rerun: see `SearchEngine.run`).
///
/// Every trial's events, as an hpo's: `proposed` when the sampler's trial enters the plan,
/// `started` when its first job is submitted (which numbers it for the pruner, in journal
/// order), then its end (`finished`, `failed`). With a pruner (`SearchSettings.pruner`), a trial
/// trains in segments: each job trains up to the pruner's next rung (or the budget), and its
/// event then says `rung` (promoted: its next job continues its run directory), `pruned` or
/// `finished`, with its validation loss per epoch and its rungs. Replaying the lines in order rebuilds the
/// pruner exactly; a trial still `running` continues first on resume. A pruned trial is no donor.
final class SearchTrials: StudyTrials {
    let search: SearchEngine
    let journal: SearchJournal
    var sampler: SearchSampling
    var pruner: TrialPruner?
    /// The latest event of each trial, and the journal's ids in order (what the sampler learns from).
    private(set) var records: [String: StudyEvent]
    private(set) var order: [String]
    private(set) var plan: [PlannedTrial] = []
    private var index: [String: Int] = [:]
    private var retrying = Set<String>()
    /// Journaled trials that depend on a retried one: rerun only if their donor changes.
    private var conditional = Set<String>()
    /// Trials (re)run in this session: a journaled dependent of one used an older version.
    private var submitted = Set<String>()
    /// Trials whose state is final in this session (journaled and not to be run again, or ended).
    private(set) var settled = Set<String>()
    /// A pruned search: each trial's number (order of its `started` events) and the epochs it reported.
    private var numbers: [String: Int] = [:]
    private var reported: [String: Int] = [:]
    /// Trials the journal leaves started (cut short in a job, or at a rung), in journal order:
    /// they continue first on resume.
    let continuing: [String]
    /// Trials the journal leaves unsettled (`continuing`, and those only proposed), in journal order.
    let unsettled: [String]

    init(_ search: SearchEngine) throws {
        self.search = search
        journal = search.directory.journal
        let lines = try journal.read()
        records = [:]
        for r in lines { records[r.id] = r }
        order = lines.map(\.id)
        sampler = try search.sampler ?? search.settings.strategy.makeSampler(space: search.settings.space)
        pruner = (search.settings.pruner ?? .none).make(budget: search.settings.space.epochs)
        for r in lines {
            if r.event == .started && numbers[r.id] == nil { numbers[r.id] = numbers.count }
            guard let values = r.values else { continue }
            let from = reported[r.id] ?? 0
            for e in from..<max(from, values.count) {
                _ = pruner?.report(trial: numbers[r.id]!, step: e + 1, value: values[e] ?? .nan)
            }
            reported[r.id] = max(from, values.count)
        }
        var seen = Set<String>()
        let latest = records
        unsettled = lines.map(\.id).filter { latest[$0]?.status == .running && seen.insert($0).inserted }
        continuing = unsettled.filter { latest[$0]?.event != .proposed }
    }

    var isExhausted: Bool { sampler.isExhausted }

    /// Asks the sampler for up to `limit` trials; returns those to run (the journal's stand).
    func propose(limit: Int) throws -> [String] {
        // What the sampler learns from: each journaled trial once, in the order it first ended;
        // then those not settled (a resumed TPE counts them as proposed already).
        var seen = Set<String>()
        let finished = order.filter { records[$0]?.status != .running && seen.insert($0).inserted }.compactMap { records[$0] }
        var proposed = sampler.propose(limit: limit, finished: finished + unsettled.compactMap { records[$0] })
        // Trials the journal leaves unsettled are planned even when the sampler does not propose
        // them again (TPE); after the others, so that the plan (and its donors) is the uninterrupted one.
        if plan.isEmpty {
            let ids = Set(proposed.map(\.id))
            proposed += unsettled.filter { !ids.contains($0) }.compactMap { records[$0]?.config }
        }
        let more = SearchPlan.make(plan.map(\.config) + proposed, reuse: search.settings.reuse)
        var queued: [String] = []
        for p in more where index[p.id] == nil {
            index[p.id] = plan.count
            plan.append(p)
            if let r = records[p.id], r.status != .running {
                if r.status == .failed && search.retryFailed {
                    retrying.insert(p.id)
                } else if search.retryFailed && p.dependencies.contains(where: { retrying.contains($0) || conditional.contains($0) }) {
                    conditional.insert(p.id)
                } else {
                    settled.insert(p.id)
                    continue
                }
            } else if records[p.id] == nil {
                var proposal = StudyEvent(.proposed, trial: p.id)
                proposal.config = p.config
                try append(proposal)
            }
            queued.append(p.id)
        }
        return queued
    }

    func dependencies(of id: String) -> [String] {
        // A donor candidate outside the plan is none: the plan holds every trial it waits for.
        index[id].map { plan[$0].dependencies.filter { index[$0] != nil } } ?? []
    }

    func job(for id: String) throws -> TrialJob? {
        let p = plan[index[id]!]
        if conditional.remove(p.id) != nil, let old = records[p.id] {
            let donor = SearchPlan.chooseDonor(for: p, records: records)
            if old.donor == donor && !(donor.map { submitted.contains($0) } ?? false) {
                // The same donor, unchanged since: its journal line stands.
                settled.insert(p.id)
                return nil
            }
        }
        // A trial cut short (in a job, at a rung) continues its run; a journaled one that ended runs again.
        let continues = records[p.id].map { $0.event == .started || $0.event == .rung } ?? false
        let rerun = retrying.remove(p.id) != nil || (records[p.id].map { $0.status != .running } ?? false)
        var job = try search.schedule(p, records: records, retry: rerun)
        submitted.insert(p.id)
        if !continues || rerun {
            // Its first job: the `started` event numbers it for the pruner, in journal order.
            if numbers[p.id] == nil { numbers[p.id] = numbers.count }
            var started = record(p, job: job, kind: .started)
            if pruner != nil { (started.values, started.rungs) = ([], []) }
            try append(started)
        }
        guard let pruner else { return job }
        if rerun { reported[p.id] = 0 }
        job.keepTestSet = true   // the last segment reports the best checkpoint's test accuracy, as a whole trial does
        job.untilEpoch = min(pruner.decisionStep(trial: numbers[p.id]!, after: reported[p.id] ?? 0), p.config.epochs)
        try SearchJSON.write(job, to: search.directory.trialDirectory(p.id) + "/job.json")
        return job
    }

    func ended(_ id: String, outcome: TrialOutcome, wallSeconds wall: Double) throws -> StudyStep {
        let p = plan[index[id]!]
        let job = try? SearchJSON.read(TrialJob.self, from: search.directory.trialDirectory(p.id) + "/job.json")
        var r = record(p, job: job, kind: Self.kind(outcome.status))
        r.error = outcome.error
        r.validationLoss = outcome.validationLoss
        r.validationAccuracy = outcome.validationAccuracy
        r.testAccuracy = outcome.testAccuracy
        r.seconds = outcome.seconds
        r.wallSeconds = min(max(0, wall), StudyData.maxSeconds)
        r.flopsExecuted = outcome.flopsExecuted
        r.flopsSkipped = outcome.flopsSkipped
        r.epochs = outcome.epochs
        r.cpuSeconds = outcome.cpuSeconds
        var step = StudyStep.settled
        if pruner != nil, let before = records[p.id], before.status == .running {
            // Wall and CPU seconds over the trial's segments.
            r.wallSeconds = min((before.wallSeconds ?? 0) + (r.wallSeconds ?? 0), StudyData.maxSeconds)
            r.cpuSeconds = r.cpuSeconds.map { $0 + (before.cpuSeconds ?? 0) }
            r.values = before.values
            r.rungs = before.rungs
            if outcome.status != .failed { step = decide(&r, budget: p.config.epochs, outcome: outcome) }
        }
        try append(r)
        if step == .settled { settled.insert(p.id) }
        try evictPrefixes()
        search.directory.refreshReport(name: search.settings.reuse.rawValue, prefixBudget: search.prefixBudget)
        return step
    }

    /// Keeps `prefixes/` within the search's disk budget: what a trial still to run or running
    /// reads (its donor's prefix, as chosen now) is kept; the rest goes, least recently used first.
    private func evictPrefixes() throws {
        var needed = Set<String>()
        for p in plan where !settled.contains(p.id) && p.reuseLayers > 0 {
            // A trial that has a job keeps the prefix it names (an interrupted one, its old donor's);
            // only those few are read, the others' folders have no job.json yet.
            let jobPath = search.directory.trialDirectory(p.id) + "/job.json"
            if FileSystem.kind(of: jobPath) == .file, let job = try? SearchJSON.read(TrialJob.self, from: jobPath),
               let key = job.prefixKey {
                needed.insert(key)
            }
            if let donor = SearchPlan.chooseDonor(for: p, records: records), let d = records[donor]?.config {
                needed.insert(PrefixStore.key(donor: d, layers: p.reuseLayers, data: search.settings.data))
            }
        }
        _ = try search.directory.prefixes.evict(budget: search.prefixBudget, needed: needed)
    }

    /// The pruner hears the segment's epochs; `r` becomes `running` (promoted), `pruned` or
    /// `finished` (at the budget), with its values and rungs.
    private func decide(_ r: inout StudyEvent, budget: Int, outcome: TrialOutcome) -> StudyStep {
        let losses = outcome.validationLosses ?? [], accuracies = outcome.validationAccuracies ?? []
        let before = reported[r.id] ?? 0
        guard losses.count == outcome.epochs, accuracies.count == outcome.epochs, outcome.epochs > before else {
            r.event = .failed
            r.error = "the worker reported \(losses.count) epochs of values for \(outcome.epochs) epochs after \(before)"
            return .settled
        }
        var values = losses
        var decision = PruneDecision.continue
        for e in before..<values.count where decision == .continue {
            decision = pruner!.report(trial: numbers[r.id]!, step: e + 1, value: values[e] ?? .nan)
            if decision == .prune { values = Array(values.prefix(e + 1)) }
        }
        reported[r.id] = values.count
        r.values = values
        r.rungs = (r.rungs ?? []) + [values.count]
        r.epochs = values.count
        // As a whole training reports: the lowest validation loss and the best accuracy so far.
        r.validationLoss = values.compactMap { $0 }.min()
        r.validationAccuracy = accuracies.prefix(values.count).compactMap { $0 }.max()
        if values.count >= budget {
            r.event = .finished   // a decision at the budget stops nothing
            return .settled
        }
        r.testAccuracy = nil
        r.event = decision == .prune ? .pruned : .rung
        return decision == .prune ? .settled : .promoted
    }

    /// The trial's event of `kind` for its job (its donor, prefix and attempt), no results yet.
    private func record(_ p: PlannedTrial, job: TrialJob?, kind: StudyEvent.Kind) -> StudyEvent {
        var e = StudyEvent(kind, trial: p.id)
        e.config = p.config
        e.donor = job?.donor
        e.reuseLayers = job?.reuseLayers ?? 0
        e.prefix = job?.prefixKey
        (e.seconds, e.wallSeconds, e.flopsExecuted, e.flopsSkipped, e.epochs) = (0, 0, 0, 0, 0)
        e.attempt = job?.attempt ?? 1
        return e
    }

    /// The event a job's ending status makes (a pruned search's rungs are `decide`'s).
    static func kind(_ status: StudyEvent.Status) -> StudyEvent.Kind {
        switch status {
        case .finished: return .finished
        case .failed: return .failed
        case .pruned: return .pruned
        case .running: return .rung
        }
    }

    private func append(_ r: StudyEvent) throws {
        try journal.append(r)
        records[r.id] = r
        order.append(r.id)
    }

    func counts() -> (done: Int, failed: Int) {
        (settled.count, settled.filter { records[$0]?.status == .failed }.count)
    }
}
