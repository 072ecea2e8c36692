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
/// trials, best score, final test accuracy), then per search its summary, the score against each
/// hyperparameter (log axes for log dimensions), parallel coordinates, every trial's learning
/// curve with the rungs where the pruner decided, the cumulative search cost, and every trial
/// with its hyperparameters, its values at the rungs, and how it ended. Rewritten after every
/// journal line while the search runs (`HPORun.refreshReport`).
public enum HPOReport {
    public struct Entry {
        public var name: String
        public var config: HPOConfig
        public var summary: HPOSummary
        public var records: [StudyEvent]
        public init(name: String, config: HPOConfig, summary: HPOSummary, records: [StudyEvent]) {
            self.name = name
            self.config = config
            self.summary = summary
            self.records = records
        }
    }

    typealias R = SearchReport

    public static func html(runs: [Entry], comparison: HPOComparison?, title: String, note: String? = nil) -> String {
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(R.escape(title))</title>
        <style>\(R.css)
        th{white-space:normal}tr.best td{font-weight:bold}td.pruned{color:#D55E00}td.complete{color:#009E73}
        .panels{display:flex;flex-wrap:wrap;gap:8px}
        </style></head><body>
        <h1>\(R.escape(title))</h1>

        """
        if let note { page += "<p class=\"warn\">\(R.escape(note))</p>\n" }
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
        for run in runs where !run.records.isEmpty {
            let suffix = runs.count > 1 ? ": " + R.escape(run.name) : ""
            page += "<h2>Score against each hyperparameter\(suffix)</h2>\n" + scoreAgainstParameters(run)
            page += "<p class=\"note\">Each dot a trial at its last epoch: filled when it ran its whole budget, hollow when the pruner "
                + "stopped it (its score is of an earlier epoch). Log axes for log-scaled dimensions; the best trial ringed.</p>\n"
            if run.config.names.count > 1 {
                page += "<h2>Parallel coordinates\(suffix)</h2>\n" + parallelCoordinates(run)
            }
            page += "<h2>Learning curves\(suffix)</h2>\n" + learningCurves(run)
        }
        page += "<h2>Cumulative search time</h2>\n"
            + R.cumulative(runs.map { ($0.name, $0.records.map(\.cost)) }, what: "jobs' wall",
                           cpu: runs.map { r in r.records.contains { $0.cpuSeconds != nil } ? r.records.map { $0.cpuSeconds ?? 0 } : nil })
        page += "<p class=\"note\">Seconds of each trial's jobs in trial order (wall solid, CPU dashed).</p>\n"
        for run in runs {
            page += "<h2>Trials\(runs.count > 1 ? ": " + R.escape(run.name) : "")</h2>\n" + trialTable(run)
        }
        return page + "</body></html>\n"
    }

    /// The objective as people read it: accuracy in percent, or loss.
    static func display(_ config: HPOConfig, _ value: Double) -> Double {
        config.objective == .accuracy ? -value * 100 : value
    }

    static func scoreLabel(_ config: HPOConfig) -> String {
        config.objective == .accuracy ? "validation accuracy (%)" : "validation loss"
    }

    static func score(_ config: HPOConfig, _ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        return config.objective == .accuracy ? R.fixed(-value * 100, 2) + "%" : R.fixed(value, 4)
    }

    static func summaryTable(_ runs: [Entry]) -> String {
        var t = "<div class=\"scroll\"><table><tr><th class=\"l\">search</th><th class=\"l\">trial model</th><th>parameters</th><th>FLOP/ image</th>"
            + "<th>search s</th><th>CPU s</th><th>wall s</th><th>trials</th><th>complete</th><th>pruned</th><th>failed</th><th>epochs trained</th>"
            + "<th>best score</th><th>final test acc</th><th>final s</th></tr>\n"
        var best = ""
        for r in runs {
            let s = r.summary
            let score = s.bestScore.map { r.config.objective == .accuracy ? formatPercent($0) : R.fixed($0, 4) } ?? "-"
            t += "<tr><td class=\"l\">\(R.escape(r.name))</td><td class=\"l\">\(R.escape(s.trialModel))</td><td>\(formatCount(Double(s.trialParameters)))</td>"
                + "<td>\(formatCount(s.trialFlopsPerImage))</td><td>\(R.seconds(s.searchSeconds))</td>"
                + "<td>\(s.searchCPUSeconds.map { R.seconds($0) } ?? "-")</td>"
                + "<td>\(s.searchWallSeconds.map { R.seconds($0) } ?? "-")</td><td>\(s.trials)</td><td>\(s.complete)</td>"
                + "<td>\(s.pruned)</td><td>\(s.failed)</td><td>\(s.trialEpochs.map(String.init) ?? "-")</td><td>\(score)</td>"
                + "<td>\(s.finalTestAccuracy.map { formatPercent($0) } ?? "-")</td>"
                + "<td>\(s.finalSeconds.map { R.seconds($0) } ?? "-")</td></tr>\n"
            if let p = s.bestParams, let trial = s.bestTrial {
                best += "<p>\(runs.count > 1 ? R.escape(r.name) + ": " : "")best trial \(trial): <code>\(R.escape(params(p)))</code></p>\n"
            }
        }
        return t + "</table></div>\n" + best
    }

    static func params(_ p: [String: HPOValue]) -> String {
        p.keys.sorted().map { "\($0)=\(value(p[$0]!))" }.joined(separator: " ")
    }

    static func value(_ v: HPOValue) -> String {
        if case .float(let x) = v { return significant(x) }
        return v.description
    }

    /// Three significant digits, with an exponent below 0.01 (learning rates, weight decays):
    /// 0.00314 -> 3.14e-3, 0.25 -> 0.250.
    static func significant(_ x: Double) -> String { formatSignificant(x) }

    // MARK: Figures

    /// A trial's number on the x axis of a dimension (nil: not placeable); categories by index.
    static func coordinate(_ dimension: HPODimension, _ v: HPOValue?) -> Double? {
        guard let v else { return nil }
        switch (dimension, v) {
        case (.categorical(let choices), .choice(let c)): return choices.firstIndex(of: c).map(Double.init)
        case (_, .float(let x)): return x
        case (_, .int(let x)): return Double(x)
        default: return nil
        }
    }

    static func axis(_ dimension: HPODimension, values: [Double]) -> Chart.Axis {
        switch dimension {
        case .float(let lo, let hi, let log): return Chart.Axis(values + [lo, hi], log: log)
        case .int(let lo, let hi, let log): return Chart.Axis(values + [Double(lo), Double(hi)], log: log, integer: true)
        case .categorical(let c): return Chart.Axis([-0.5, Double(max(c.count, 1)) - 0.5], integer: true)
        }
    }

    static func colour(_ status: StudyEvent.Status) -> String {
        switch status {
        case .finished: return "#0072B2"
        case .pruned: return "#D55E00"
        case .failed: return "#CC79A7"
        case .running: return "#999999"
        }
    }

    static func trialTip(_ run: Entry, _ r: StudyEvent) -> String {
        "trial \(r.trialNumber) (\(r.hpoStatus), \(plural(r.objectives.count, "epoch"))): \(score(run.config, r.objectives.last))\n\(params(r.params ?? [:]))"
    }

    /// Small multiples: the last score of each trial against each hyperparameter.
    static func scoreAgainstParameters(_ run: Entry) -> String {
        let c = run.config
        let placed = run.records.filter { ($0.objectives.last ?? .nan).isFinite }
        let y = Chart.Axis(placed.map { display(c, $0.objectives.last!) })
        var s = "<div class=\"panels\">\n"
        for (name, dimension) in zip(c.names, c.dimensions) {
            let xs = placed.map { coordinate(dimension, $0.params?[name]) }
            let x = axis(dimension, values: xs.compactMap { $0 })
            let fr = Chart.Frame(x: 58, y: 10, width: 270, height: 180)
            var svg = Chart.open(width: 340, height: 240)
            if case .categorical(let choices) = dimension {
                svg += Chart.axes(fr, x: x, y: y, xLabel: name, yLabel: scoreLabel(c), xLabels: false)
                for (i, choice) in choices.enumerated() {
                    guard let px = fr.px(Double(i), x) else { continue }
                    svg += "<text x=\"\(Chart.f(px))\" y=\"\(Chart.f(fr.y + fr.height + 16))\" text-anchor=\"middle\" fill=\"#333\">\(Chart.escape(choice))</text>\n"
                }
            } else {
                svg += Chart.axes(fr, x: x, y: y, xLabel: name + (dimension.isLog ? " (log)" : ""), yLabel: scoreLabel(c))
            }
            for (r, xv) in zip(placed, xs) {
                guard let xv, let px = fr.px(xv, x), let py = fr.py(display(c, r.objectives.last!), y) else { continue }
                let isBest = r.trialNumber == run.summary.bestTrial
                let fill = r.status == .finished ? colour(r.status) : "none"
                svg += "<circle cx=\"\(Chart.f(px))\" cy=\"\(Chart.f(py))\" r=\"\(isBest ? 5 : 3.5)\" fill=\"\(fill)\" fill-opacity=\"0.8\" "
                    + "stroke=\"\(isBest ? "#000" : colour(r.status))\" stroke-width=\"\(isBest ? 2 : 1.2)\"><title>\(Chart.escape(trialTip(run, r)))</title></circle>\n"
            }
            s += svg + "</svg>\n"
        }
        return s + "</div>\n"
    }

    /// One vertical axis per hyperparameter and one for the score; a line per trial, coloured
    /// by its score (dark: best), pruned and failed trials thin and grey.
    static func parallelCoordinates(_ run: Entry) -> String {
        let c = run.config
        let dims = Array(zip(c.names, c.dimensions))
        let n = dims.count + 1
        let width = 1000.0, top = 30.0, height = 260.0
        // Axes from x = 60 to width - 130: the last axis's title (the score's) stays inside.
        let gap = (width - 190) / Double(max(1, n - 1))
        let axes = dims.map { name, d in axis(d, values: run.records.compactMap { coordinate(d, $0.params?[name]) }) }
        let scores = run.records.compactMap(\.objectives.last).filter(\.isFinite).map { display(c, $0) }
        let scoreAxis = Chart.Axis(scores)
        let lo = scores.min() ?? 0, hi = scores.max() ?? 1
        func frame(_ i: Int) -> Chart.Frame { Chart.Frame(x: 60 + gap * Double(i), y: top, width: 0, height: height) }
        var s = Chart.open(width: width, height: top + height + 40)
        // Lines first (under the axes): worst first so the best are drawn on top.
        let better: (Double, Double) -> Bool = c.objective == .accuracy ? { $0 < $1 } : { $0 > $1 }
        let ordered = run.records.sorted {
            let a = $0.objectives.last.map { display(c, $0) } ?? .nan, b = $1.objectives.last.map { display(c, $0) } ?? .nan
            return !a.isFinite ? b.isFinite : (b.isFinite && better(a, b))
        }
        for r in ordered {
            var points: [String] = []
            for (i, (name, d)) in dims.enumerated() {
                guard let v = coordinate(d, r.params?[name]), let py = frame(i).py(v, axes[i]) else { continue }
                points.append("\(Chart.f(frame(i).x)),\(Chart.f(py))")
            }
            let sc = r.objectives.last.map { display(c, $0) } ?? .nan
            if let py = frame(n - 1).py(sc, scoreAxis) { points.append("\(Chart.f(frame(n - 1).x)),\(Chart.f(py))") }
            guard points.count > 1 else { continue }
            let complete = r.status == .finished && sc.isFinite
            // 0 (worst) ... 1 (best) along the score.
            let t = hi > lo ? (c.objective == .accuracy ? (sc - lo) / (hi - lo) : (hi - sc) / (hi - lo)) : 1
            let stroke = complete ? ramp(t) : "#bbbbbb"
            s += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(stroke)\" "
                + "stroke-width=\"\(complete ? 2 : 1)\" stroke-opacity=\"\(complete ? "0.85" : "0.6")\"><title>\(Chart.escape(trialTip(run, r)))</title></polyline>\n"
        }
        for i in 0..<n {
            let fr = frame(i)
            let a = i < dims.count ? axes[i] : scoreAxis
            let name = i < dims.count ? dims[i].0 + (dims[i].1.isLog ? " (log)" : "") : scoreLabel(c)
            s += "<line x1=\"\(Chart.f(fr.x))\" x2=\"\(Chart.f(fr.x))\" y1=\"\(Chart.f(top))\" y2=\"\(Chart.f(top + height))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(Chart.f(fr.x))\" y=\"\(Chart.f(top - 12))\" text-anchor=\"middle\" font-weight=\"bold\">\(Chart.escape(name))</text>\n"
            if i < dims.count, case .categorical(let choices) = dims[i].1 {
                for (k, choice) in choices.enumerated() {
                    guard let py = fr.py(Double(k), a) else { continue }
                    s += "<text x=\"\(Chart.f(fr.x + 5))\" y=\"\(Chart.f(py))\" dy=\"0.35em\" fill=\"#333\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">\(Chart.escape(choice))</text>\n"
                }
                continue
            }
            for t in a.ticks {
                guard let py = fr.py(t, a) else { continue }
                s += "<line x1=\"\(Chart.f(fr.x - 3))\" x2=\"\(Chart.f(fr.x))\" y1=\"\(Chart.f(py))\" y2=\"\(Chart.f(py))\" stroke=\"#333\"/>"
                    + "<text x=\"\(Chart.f(fr.x - 5))\" y=\"\(Chart.f(py))\" dy=\"0.35em\" text-anchor=\"end\" fill=\"#333\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">\(Chart.escape(a.label(t)))</text>\n"
            }
        }
        s += "<text x=\"60\" y=\"\(Chart.f(top + height + 30))\" fill=\"#666\">a line per trial through its hyperparameters to its last score; "
            + "complete trials coloured by score (dark blue: best, yellow: worst), pruned and failed grey</text>\n"
        return s + "</svg>\n"
    }

    /// Yellow (t = 0) to dark blue (t = 1).
    static func ramp(_ t: Double) -> String {
        let t = t.isFinite ? min(max(t, 0), 1) : 0
        let a = (230.0, 159.0, 0.0), b = (0.0, 40.0, 120.0)
        func hex(_ x: Double, _ y: Double) -> String {
            let v = clampedInt((x + (y - x) * t).rounded(), 0...255)
            let digits = Array("0123456789abcdef")
            return String(digits[v / 16]) + String(digits[v % 16])
        }
        return "#" + hex(a.0, b.0) + hex(a.1, b.1) + hex(a.2, b.2)
    }

    /// Every trial's score per epoch, the epochs where its jobs ended (the rungs the pruner
    /// decided at) as dots, where the pruner stopped it as a cross; the best trial thick.
    static func learningCurves(_ run: Entry) -> String {
        let c = run.config
        let budget = max(1, c.trial.epochs, run.records.map(\.objectives.count).max() ?? 1)
        let x = Chart.Axis([1, Double(budget)], integer: true)
        let y = Chart.Axis(run.records.flatMap(\.objectives).map { display(c, $0) })
        let statuses: [StudyEvent.Status] = [.finished, .pruned, .failed, .running]
        let present = statuses.filter { st in run.records.contains { $0.status == st } }
        var entries = present.map { (colour: colour($0), name: $0 == .finished ? "complete" : $0.rawValue) }
        entries.append(("#000", "best (thick)"))
        let legend = Chart.legend(entries, x: 70, y: 12, width: 900)
        let fr = Chart.Frame(x: 70, y: 24 + legend.height, width: 900, height: 280)
        var s = Chart.open(width: 1000, height: fr.y + fr.height + 46) + legend.svg
            + Chart.axes(fr, x: x, y: y, xLabel: "epoch", yLabel: scoreLabel(c))
        s += "<circle cx=\"\(Chart.f(fr.x + fr.width - 250))\" cy=\"\(Chart.f(fr.y + fr.height + 36))\" r=\"3\" fill=\"#333\"/>"
            + "<text x=\"\(Chart.f(fr.x + fr.width - 242))\" y=\"\(Chart.f(fr.y + fr.height + 36))\" dy=\"0.35em\" fill=\"#333\">rung (pruner decided)</text>"
            + "<text x=\"\(Chart.f(fr.x + fr.width - 100))\" y=\"\(Chart.f(fr.y + fr.height + 36))\" dy=\"0.35em\" fill=\"#333\">x pruned here</text>\n"
        let ordered = run.records.sorted { ($0.trialNumber == run.summary.bestTrial ? 1 : 0, $0.trialNumber) < ($1.trialNumber == run.summary.bestTrial ? 1 : 0, $1.trialNumber) }
        for r in ordered {
            let isBest = r.trialNumber == run.summary.bestTrial
            let points = r.objectives.enumerated().map { (Double($0.offset + 1), display(c, $0.element)) }
            let col = colour(r.status)
            s += "<g><title>\(Chart.escape(trialTip(run, r)))</title>"
            s += Chart.polyline(points, fr, x: x, y: y, colour: isBest ? "#000" : col, width: isBest ? 3 : 1.5,
                                opacity: isBest ? 1 : 0.7, title: trialTip(run, r))
            for rung in r.rungs ?? [] where rung >= 1 && rung <= r.objectives.count {
                guard let px = fr.px(Double(rung), x), let py = fr.py(display(c, r.objectives[rung - 1]), y) else { continue }
                if r.status == .pruned && rung == r.objectives.count {
                    s += "<path d=\"M\(Chart.f(px - 4)),\(Chart.f(py - 4)) L\(Chart.f(px + 4)),\(Chart.f(py + 4)) M\(Chart.f(px - 4)),\(Chart.f(py + 4)) L\(Chart.f(px + 4)),\(Chart.f(py - 4))\" stroke=\"\(col)\" stroke-width=\"2\"/>"
                } else {
                    s += "<circle cx=\"\(Chart.f(px))\" cy=\"\(Chart.f(py))\" r=\"3\" fill=\"\(isBest ? "#000" : col)\"/>"
                }
            }
            if r.objectives.count == 1, let px = fr.px(1, x), let py = fr.py(display(c, r.objectives[0]), y), (r.rungs ?? []).isEmpty {
                s += "<circle cx=\"\(Chart.f(px))\" cy=\"\(Chart.f(py))\" r=\"2\" fill=\"\(col)\"/>"
            }
            s += "</g>\n"
        }
        return s + "</svg>\n"
    }

    static func trialTable(_ run: Entry) -> String {
        let names = run.config.names
        var t = "<div class=\"scroll\"><table><tr><th>trial</th>" + names.map { "<th>\(R.escape($0))</th>" }.joined()
            + "<th class=\"l\">state</th><th>epochs</th><th class=\"l\">at the rungs</th><th>last score</th><th>seconds</th><th>CPU s</th></tr>\n"
        for r in run.records {
            let isBest = r.trialNumber == run.summary.bestTrial
            let cells = names.map { name -> String in
                guard let v = r.params?[name] else { return "<td>-</td>" }
                return "<td>\(R.escape(value(v)))</td>"
            }.joined()
            let rungs = (r.rungs ?? []).filter { $0 >= 1 && $0 <= r.objectives.count }
                .map { "e\($0): \(score(run.config, r.objectives[$0 - 1]))" }.joined(separator: ", ")
            let state = r.hpoStatus + (r.error.map { ": " + $0 } ?? "")
            t += "<tr\(isBest ? " class=\"best\"" : "")><td>\(r.trialNumber)\(isBest ? " (best)" : "")</td>\(cells)"
                + "<td class=\"l wrap \(r.hpoStatus)\">\(R.escape(state))</td><td>\(r.objectives.count)</td>"
                + "<td class=\"l wrap\">\(R.escape(rungs))</td><td>\(score(run.config, r.objectives.last))</td><td>\(R.seconds(r.cost))</td>"
                + "<td>\(r.cpuSeconds.map { R.seconds($0) } ?? "-")</td></tr>\n"
        }
        return t + "</table></div>\n"
    }
}

extension HPODimension {
    var isLog: Bool {
        switch self {
        case .float(_, _, let log), .int(_, _, let log): return log
        case .categorical: return false
        }
    }
}

extension HPORun {
    /// The hook after each journal line: `report.html` rewritten (atomically) from the trials so
    /// far, so the search can be followed in a browser. A failure is ignored here (the report at
    /// the end of the search reports it).
    func refreshReport(_ latest: [StudyEvent]) {
        let rs = latest.sorted { $0.trialNumber < $1.trialNumber }
        let model = try? Model(spec: config.trial.model)
        var summary = HPOSummary(trials: rs.count, complete: rs.filter { $0.status == .finished }.count,
                                 pruned: rs.filter { $0.status == .pruned }.count,
                                 failed: rs.filter { $0.status == .failed }.count,
                                 searchSeconds: rs.reduce(0) { $0 + $1.cost },
                                 trainingSeconds: rs.reduce(0) { $0 + ($1.seconds ?? 0) },
                                 searchCPUSeconds: rs.contains { $0.cpuSeconds != nil } ? rs.reduce(0) { $0 + ($1.cpuSeconds ?? 0) } : nil,
                                 trialEpochs: rs.reduce(0) { $0 + $1.objectives.count },
                                 trialModel: config.trial.modelName,
                                 trialParameters: model?.parameterCount ?? 0, trialFlopsPerImage: model?.cost.forward ?? 0)
        if let best = rs.filter({ $0.status == .finished && ($0.objectives.last?.isFinite ?? false) }).min(by: { $0.objectives.last! < $1.objectives.last! }) {
            summary.bestTrial = best.trialNumber
            summary.bestParams = best.params
            summary.bestScore = config.objective == .accuracy ? -best.objectives.last! : best.objectives.last!
        }
        let running = rs.filter { $0.status == .running }.count
        let html = HPOReport.html(runs: [HPOReport.Entry(name: config.proxy == nil ? "search" : "proxy search", config: config,
                                                         summary: summary, records: rs)],
                                  comparison: nil, title: "strata hpo: \(directory.path)",
                                  note: "In progress: \(plural(rs.count - running, "trial")) of \(config.trials) ended, \(running) running. "
                                      + "This page is rewritten as trials finish; reload it.")
        try? SearchReport.write(html, to: reportPath)
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
