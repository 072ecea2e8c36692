/// `comparison.json` of `strata hpo --compare-full`: the proxy search and the full one, same
/// sampler, seed and number of trials.
public struct HPOComparison: Codable, Equatable, Sendable {
    public var proxy: HPOSummary
    public var full: HPOSummary
    /// 1 - proxy search seconds / full search seconds (the trials' compute, `searchSeconds`).
    public var searchTimeSaved: Double
    /// Proxy's final test accuracy minus the full search's, in points (nil without both).
    public var finalAccuracyDifference: Double?
    /// 1 - proxy CPU seconds / full CPU seconds (the trials' jobs, user + system).
    public var cpuTimeSaved: Double?

    public init(proxy: HPOSummary, full: HPOSummary) {
        self.proxy = proxy
        self.full = full
        searchTimeSaved = full.searchSeconds > 0 ? 1 - proxy.searchSeconds / full.searchSeconds : 0
        if let a = proxy.finalTestAccuracy, let b = full.finalTestAccuracy { finalAccuracyDifference = (a - b) * 100 }
        if let a = proxy.searchCPUSeconds, let b = full.searchCPUSeconds, b > 0 { cpuTimeSaved = 1 - a / b }
    }
}

/// `report.html` of `strata hpo`: one self-contained page in the search report's style (inline
/// SVG and CSS, no script): with `--compare-full` the proxy and full searches side by side (time,
/// trials, best score, final test accuracy), then per search its summary, cumulative search cost,
/// and every trial with its hyperparameters, its values at the rungs where the pruner decided,
/// and how it ended.
public enum HPOReport {
    public struct Entry {
        public var name: String
        public var config: HPOConfig
        public var summary: HPOSummary
        public var records: [HPOTrialRecord]
        public init(name: String, config: HPOConfig, summary: HPOSummary, records: [HPOTrialRecord]) {
            self.name = name
            self.config = config
            self.summary = summary
            self.records = records
        }
    }

    typealias R = SearchReport

    public static func html(runs: [Entry], comparison: HPOComparison?, title: String) -> String {
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(R.escape(title))</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
        table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
        th{background:#f3f3f3}td.l,th.l{text-align:left}h2{margin-top:1.6em}svg{background:#fff}
        .note{color:#666}tr.best td{font-weight:bold}td.pruned{color:#d62728}td.complete{color:#2ca02c}
        </style></head><body>
        <h1>\(R.escape(title))</h1>

        """
        if let c = comparison {
            page += "<h2>Proxy against full model</h2>\n" + summaryTable(runs)
            page += "<p>Search time saved by the proxy: <b>\(R.fixed(c.searchTimeSaved * 100, 1))%</b>"
                + (c.cpuTimeSaved.map { " (CPU time: \(R.fixed($0 * 100, 1))%)" } ?? "")
            if let d = c.finalAccuracyDifference {
                page += "; final test accuracy, proxy minus full: <b>\(d >= 0 ? "+" : "")\(R.fixed(d, 2)) points</b>"
            }
            page += ".</p>\n"
        } else {
            page += "<h2>Summary</h2>\n" + summaryTable(runs)
        }
        for run in runs {
            guard let scales = run.config.trial.optimizer.learningRateScales, let low = scales.values.min(),
                  let high = scales.values.max() else { continue }
            page += "<p>\(R.escape(run.name)): the proxy's learning rates follow its widths: \(scales.count) weights whose fan-in "
                + "the pruning narrowed (\(R.escape(scales.keys.sorted().joined(separator: ", ")))) trained at "
                + "\(R.fixed(Double(low), 2))\(high > low ? "-" + R.fixed(Double(high), 2) : "")x the sampled lr "
                + "(sqrt of full fan-in / proxy fan-in), so the lr found is the full model's.</p>\n"
        }
        page += "<p class=\"note\">Search s: the trials' jobs' wall seconds summed (worker start and data loading included; "
            + "the trials' compute, whatever the number of workers). CPU s: their CPU seconds (user + system), "
            + "less moved by other work on the machine. Wall s: the search sessions' wall time. "
            + "Best score: the best complete trial's validation \(runs.first?.config.objective == .loss ? "loss" : "accuracy"). "
            + "Final: the full model trained with the winner's hyperparameters, its test accuracy.</p>\n"
        page += "<h2>Cumulative search time</h2>\n"
            + R.cumulative(runs.map { ($0.name, $0.records.map(\.cost)) })
        page += "<p class=\"note\">Seconds of each trial's jobs in trial order.</p>\n"
        for run in runs {
            page += "<h2>Trials\(runs.count > 1 ? ": " + R.escape(run.name) : "")</h2>\n" + trialTable(run)
        }
        return page + "</body></html>\n"
    }

    static func score(_ config: HPOConfig, _ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        return config.objective == .accuracy ? R.fixed(-value * 100, 2) + "%" : R.fixed(value, 4)
    }

    static func summaryTable(_ runs: [Entry]) -> String {
        var t = "<table><tr><th class=\"l\">search</th><th class=\"l\">trial model</th><th>parameters</th><th>FLOP/image</th>"
            + "<th>search s</th><th>CPU s</th><th>wall s</th><th>trials</th><th>complete</th><th>pruned</th><th>failed</th><th>epochs trained</th>"
            + "<th>best score</th><th class=\"l\">best hyperparameters</th><th>final test acc</th><th>final s</th></tr>\n"
        for r in runs {
            let s = r.summary
            let best = s.bestScore.map { r.config.objective == .accuracy ? R.fixed($0 * 100, 2) + "%" : R.fixed($0, 4) } ?? "-"
            t += "<tr><td class=\"l\">\(R.escape(r.name))</td><td class=\"l\">\(R.escape(s.trialModel))</td><td>\(s.trialParameters)</td>"
                + "<td>\(R.sci(s.trialFlopsPerImage))</td><td>\(R.fixed(s.searchSeconds, 1))</td>"
                + "<td>\(s.searchCPUSeconds.map { R.fixed($0, 1) } ?? "-")</td>"
                + "<td>\(s.searchWallSeconds.map { R.fixed($0, 1) } ?? "-")</td><td>\(s.trials)</td><td>\(s.complete)</td>"
                + "<td>\(s.pruned)</td><td>\(s.failed)</td><td>\(s.trialEpochs.map(String.init) ?? "-")</td><td>\(best)</td>"
                + "<td class=\"l\">\(R.escape(params(s.bestParams ?? [:])))</td>"
                + "<td>\(s.finalTestAccuracy.map { R.fixed($0 * 100, 2) + "%" } ?? "-")</td>"
                + "<td>\(s.finalSeconds.map { R.fixed($0, 1) } ?? "-")</td></tr>\n"
        }
        return t + "</table>\n"
    }

    static func params(_ p: [String: HPOValue]) -> String {
        p.keys.sorted().map { key -> String in
            if case .float(let x) = p[key]! { return "\(key)=\(significant(x))" }
            return "\(key)=\(p[key]!)"
        }.joined(separator: " ")
    }

    /// Three significant digits, with an exponent below 0.01 (learning rates, weight decays):
    /// 0.00314 -> 3.14e-3, 0.25 -> 0.250.
    static func significant(_ x: Double) -> String {
        guard x.isFinite, x != 0 else { return "\(x)" }
        var m = abs(x), e = 0
        if m >= 0.01 && m < 1000 { return R.fixed(x, m >= 100 ? 0 : m >= 10 ? 1 : m >= 1 ? 2 : 3) }
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        if R.fixed(m, 2) == "10.00" { m /= 10; e += 1 }
        return (x < 0 ? "-" : "") + R.fixed(m, 2) + "e" + String(e)
    }

    static func trialTable(_ run: Entry) -> String {
        let names = run.config.names
        var t = "<table><tr><th>trial</th>" + names.map { "<th>\(R.escape($0))</th>" }.joined()
            + "<th class=\"l\">state</th><th>epochs</th><th class=\"l\">at the rungs</th><th>last score</th><th>seconds</th></tr>\n"
        for r in run.records {
            let isBest = r.trial == run.summary.bestTrial
            let cells = names.map { name -> String in
                guard let v = r.params[name] else { return "<td>-</td>" }
                if case .float(let x) = v { return "<td>\(significant(x))</td>" }
                return "<td>\(R.escape(v.description))</td>"
            }.joined()
            let rungs = (r.rungs ?? []).filter { $0 >= 1 && $0 <= r.values.count }
                .map { "e\($0): \(score(run.config, r.values[$0 - 1]))" }.joined(separator: ", ")
            let state = r.status.rawValue + (r.error.map { ": " + $0 } ?? "")
            t += "<tr\(isBest ? " class=\"best\"" : "")><td>\(r.trial + 1)\(isBest ? " (best)" : "")</td>\(cells)"
                + "<td class=\"l \(r.status.rawValue)\">\(R.escape(state))</td><td>\(r.values.count)</td>"
                + "<td class=\"l\">\(R.escape(rungs))</td><td>\(score(run.config, r.values.last))</td><td>\(R.fixed(r.cost, 1))</td></tr>\n"
        }
        return t + "</table>\n"
    }
}

extension HPOReport {
    /// `--compare-full`: writes `comparison.json` and the side-by-side `report.html` into
    /// `directory` (the folder holding `proxy/` and `full/`).
    @discardableResult
    public static func writeComparison(proxy: (run: HPORun, summary: HPOSummary), full: (run: HPORun, summary: HPOSummary),
                                       to directory: String) throws -> HPOComparison {
        let comparison = HPOComparison(proxy: proxy.summary, full: full.summary)
        try RunDirectory(path: directory).writeJSON(comparison, to: directory + "/comparison.json")
        let html = html(runs: [Entry(name: "proxy", config: proxy.run.config, summary: proxy.summary, records: proxy.run.records),
                               Entry(name: "full model", config: full.run.config, summary: full.summary, records: full.run.records)],
                        comparison: comparison, title: "strata hpo: proxy against full model (\(directory))")
        try SearchReport.write(html, to: directory + "/report.html")
        return comparison
    }
}
