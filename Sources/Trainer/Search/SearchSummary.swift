/// `summary.json` of a search: totals over its journal.
public struct SearchSummary: Codable, Equatable, Sendable {
    public struct Best: Codable, Equatable, Sendable {
        public var id: String
        public var config: TrialConfig
        public var donor: String?
        public var validationLoss: Double
        public var validationAccuracy: Double?
        public var testAccuracy: Double?
    }

    public var name: String
    public var reuse: ReuseStrategy
    public var trials: Int
    public var finished: Int
    /// Trials a pruner stopped at a rung (nil: none, or a search without a pruner).
    public var pruned: Int?
    public var failed: Int
    public var withDonor: Int
    /// Sums of the trials' training seconds (epochs with validation), all and those with 2+ conv layers.
    public var trainingSeconds: Double
    public var multiLayerSeconds: Double
    /// Sums of the trials' process wall seconds.
    public var wallSeconds: Double
    /// Sum of the trials' CPU seconds (user + system), over the trials whose record has them;
    /// nil when none does (journals from before they were recorded).
    public var cpuSeconds: Double?
    /// Wall seconds of the search sessions that ended normally (`sessions.jsonl`).
    public var searchSeconds: Double?
    public var flopsExecuted: Double
    public var flopsSkipped: Double
    public var multiLayerFlopsExecuted: Double
    public var best: Best?
    /// `prefixes/` on disk: its budget, what is kept, what the budget removed (all sessions).
    public var prefixStore: PrefixStoreUsage?

    enum CodingKeys: String, CodingKey {
        case name, reuse, trials, finished, pruned, failed, withDonor = "with_donor", trainingSeconds = "training_seconds",
             multiLayerSeconds = "multi_layer_seconds", wallSeconds = "wall_seconds", cpuSeconds = "cpu_seconds", searchSeconds = "search_seconds",
             flopsExecuted = "flops_executed", flopsSkipped = "flops_skipped",
             multiLayerFlopsExecuted = "multi_layer_flops_executed", best, prefixStore = "prefix_store"
    }

    public init(name: String, reuse: ReuseStrategy, records: [StudyEvent], searchSeconds: Double? = nil) {
        self.name = name
        self.searchSeconds = searchSeconds
        self.reuse = reuse
        trials = records.count
        finished = records.filter { $0.status == .finished }.count
        failed = records.filter { $0.status == .failed }.count
        let stopped = records.filter { $0.status == .pruned }.count
        pruned = stopped > 0 ? stopped : nil
        withDonor = records.filter { $0.donor != nil }.count
        trainingSeconds = records.reduce(0) { $0 + ($1.seconds ?? 0) }
        multiLayerSeconds = records.filter(\.isMultiLayer).reduce(0) { $0 + ($1.seconds ?? 0) }
        wallSeconds = records.reduce(0) { $0 + ($1.wallSeconds ?? 0) }
        let cpu = records.compactMap(\.cpuSeconds)
        cpuSeconds = cpu.isEmpty ? nil : cpu.reduce(0, +)
        flopsExecuted = records.reduce(0) { $0 + ($1.flopsExecuted ?? 0) }
        flopsSkipped = records.reduce(0) { $0 + ($1.flopsSkipped ?? 0) }
        multiLayerFlopsExecuted = records.filter(\.isMultiLayer).reduce(0) { $0 + ($1.flopsExecuted ?? 0) }
        best = records.filter { $0.status == .finished && ($0.validationLoss ?? .nan).isFinite }
            .min { ($0.validationLoss!, $0.id) < ($1.validationLoss!, $1.id) }
            .flatMap { r in r.config.map { Best(id: r.id, config: $0, donor: r.donor, validationLoss: r.validationLoss!,
                                                validationAccuracy: r.validationAccuracy, testAccuracy: r.testAccuracy) } }
    }
}

extension SearchDirectory {
    /// Reads settings and journal (records in journal order, last attempt of each trial).
    public func load() throws -> (settings: SearchSettings, records: [StudyEvent]) {
        let settings = try readSettings()
        let all = try journal.read()
        var last: [String: Int] = [:]
        for (i, r) in all.enumerated() { last[r.id] = i }
        return (settings, all.enumerated().filter { last[$0.element.id] == $0.offset }.map(\.element))
    }

    /// Writes `summary.json` and `report.html` from the journal.
    @discardableResult
    public func writeSummaryAndReport(name: String? = nil, prefixBudget: Int? = nil) throws -> SearchSummary {
        let (settings, records) = try load()
        let seconds = sessionSeconds()
        var summary = SearchSummary(name: name ?? path, reuse: settings.reuse, records: records,
                                    searchSeconds: seconds > 0 ? seconds : nil)
        if settings.reuse != .none { summary.prefixStore = prefixes.usage(budget: prefixBudget) }
        try SearchJSON.write(summary, to: summaryPath)
        let html = SearchReport.html(searches: [(summary, records)], title: "strata search: \(path)")
        do { try FileSystem.writeAtomically(Array(html.utf8), to: reportPath) } catch {
            throw SearchError("\(reportPath) cannot be written: \(error)")
        }
        return summary
    }

    /// The engine's hook after each journal append: `summary.json` and `report.html` rewritten
    /// (atomically) so the report can be followed while the search runs. A failure here is not
    /// the search's: it is ignored, and the write at the end of the search reports it.
    public func refreshReport(name: String, prefixBudget: Int? = nil) {
        _ = try? writeSummaryAndReport(name: name, prefixBudget: prefixBudget)
    }
}
