/// A search's trials for the study engine: what the sampler proposes, planned for reuse (a
/// trial waits for its donor candidates), each run as one job of its `TrialConfig`, its result
/// one `TrialRecord` line of the journal. Trials the journal holds are skipped (or, with
/// `retryFailed`, failed ones and those depending on them rerun: see `SearchEngine.run`).
final class SearchTrials: StudyTrials {
    let search: SearchEngine
    let journal: SearchJournal
    var sampler: SearchSampling
    /// The latest record of each trial, and the journal's ids in order (what the sampler learns from).
    private(set) var records: [String: TrialRecord]
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

    init(_ search: SearchEngine) throws {
        self.search = search
        journal = search.directory.journal
        records = try journal.latest()
        order = try journal.read().map(\.id)
        sampler = try search.sampler ?? search.settings.strategy.makeSampler(space: search.settings.space)
    }

    var isExhausted: Bool { sampler.isExhausted }

    /// Asks the sampler for up to `limit` trials; returns those to run (the journal's stand).
    func propose(limit: Int) throws -> [String] {
        let finished = order.compactMap { records[$0] }
        let proposed = sampler.propose(limit: limit, finished: finished)
        let more = SearchPlan.make(plan.map(\.config) + proposed, reuse: search.settings.reuse)
        var queued: [String] = []
        for p in more where index[p.id] == nil {
            index[p.id] = plan.count
            plan.append(p)
            if let r = records[p.id] {
                if r.status == .failed && search.retryFailed {
                    retrying.insert(p.id)
                } else if search.retryFailed && p.dependencies.contains(where: { retrying.contains($0) || conditional.contains($0) }) {
                    conditional.insert(p.id)
                } else {
                    settled.insert(p.id)
                    continue
                }
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
        let rerun = retrying.remove(p.id) != nil || records[p.id] != nil
        let job = try search.schedule(p, records: records, retry: rerun)
        submitted.insert(p.id)
        return job
    }

    func ended(_ id: String, outcome: TrialOutcome, wallSeconds wall: Double) throws -> StudyStep {
        let p = plan[index[id]!]
        let job = try? SearchJSON.read(TrialJob.self, from: search.directory.trialDirectory(p.id) + "/job.json")
        let record = TrialRecord(
            id: p.id, config: p.config, donor: job?.donor, reuseLayers: job?.reuseLayers ?? 0,
            prefix: job?.prefixKey, status: outcome.status, error: outcome.error,
            validationLoss: outcome.validationLoss, validationAccuracy: outcome.validationAccuracy,
            testAccuracy: outcome.testAccuracy, seconds: outcome.seconds, wallSeconds: min(max(0, wall), StudyData.maxSeconds),
            flopsExecuted: outcome.flopsExecuted, flopsSkipped: outcome.flopsSkipped,
            epochs: outcome.epochs, attempt: job?.attempt ?? 1, cpuSeconds: outcome.cpuSeconds)
        try journal.append(record)
        search.directory.refreshReport(name: search.settings.reuse.rawValue)
        records[p.id] = record
        order.append(p.id)
        settled.insert(p.id)
        return .settled
    }

    func counts() -> (done: Int, failed: Int) {
        (settled.count, settled.filter { records[$0]?.status == .failed }.count)
    }
}
