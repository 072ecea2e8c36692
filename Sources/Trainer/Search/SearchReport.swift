/// `report.html`: one self-contained page (inline SVG and CSS, no script, no network) with the
/// summary of one or more searches, box plots of training time and validation loss of the
/// multi-layer trials with and without reuse, the cumulative search time (training and CPU
/// seconds), the best trials and the donor graph. Rewritten after every trial
/// (`SearchDirectory.refreshReport`), so it can be opened while the search runs.
///
/// Why our own SVG and not a charting library (Plotly, Vega-Lite, uPlot): the page must open
/// offline from a run folder that may be copied anywhere, so a library would be inlined into
/// every report (100 kB to 3 MB of script) and pinned, vetted and updated by us; the charts here
/// are few and simple, hover texts come from SVG `<title>`, and a static page is what the
/// headless-browser check (`scripts/report-check.sh`) can hold to "no console errors".
public enum SearchReport {
    public static func html(searches: [(summary: SearchSummary, records: [StudyEvent])], title: String) -> String {
        var groupsTime: [(String, [Double])] = [], groupsLoss: [(String, [Double])] = []
        for (s, records) in searches {
            let multi = records.filter { $0.isMultiLayer && $0.status == .finished }
            for (label, rs) in [("scratch", multi.filter { $0.donor == nil }), ("reuse", multi.filter { $0.donor != nil })] where !rs.isEmpty {
                let name = searches.count > 1 ? "\(s.name): \(label)" : label
                groupsTime.append((name, rs.compactMap(\.seconds).filter(\.isFinite)))
                groupsLoss.append((name, rs.compactMap(\.validationLoss).filter(\.isFinite)))
            }
        }
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>\(css)</style></head><body>
        <h1>\(escape(title))</h1>
        <h2>Summary</h2>
        <div class="scroll"><table><tr><th class="l">search</th><th>reuse</th><th>trials</th><th>failed</th><th>with donor</th>
        <th>search wall s</th><th>training s</th><th>CPU s</th><th>2-3 conv s</th><th>executed FLOP</th><th>skipped FLOP</th><th>best val loss</th><th>its test acc</th></tr>
        """
        for (s, _) in searches {
            page += "<tr><td class=\"l\">\(escape(s.name))</td><td>\(s.reuse.rawValue)</td><td>\(s.trials)</td><td>\(s.failed)</td>"
                + "<td>\(s.withDonor)</td><td>\(s.searchSeconds.map { seconds($0) } ?? "-")</td><td>\(seconds(s.trainingSeconds))</td>"
                + "<td>\(s.cpuSeconds.map { seconds($0) } ?? "-")</td><td>\(seconds(s.multiLayerSeconds))</td>"
                + "<td>\(formatCount(s.flopsExecuted))</td><td>\(formatCount(s.flopsSkipped))</td>"
                + "<td>\(s.best.map { fixed($0.validationLoss, 4) } ?? "-")</td>"
                + "<td>\(s.best?.testAccuracy.map { formatPercent($0) } ?? "-")</td></tr>\n"
        }
        page += "</table></div>\n"
        page += "<p class=\"note\">Training s: the trials' epochs (validation included), summed. CPU s: user + system seconds of the "
            + "trials' jobs, every thread, summed: the compute a search costs, little moved by other work on the machine, "
            + "where wall seconds are not.</p>\n"
        page += "<h2>Training time of the 2-3 conv-layer trials</h2>\n" + boxPlot(groupsTime, unit: "seconds per trial")
        page += "<h2>Validation loss of the 2-3 conv-layer trials</h2>\n" + boxPlot(groupsLoss, unit: "lowest validation loss")
        page += "<h2>Cumulative search time</h2>\n"
            + cumulative(searches.map { ($0.summary.name, $0.records.map { $0.seconds ?? 0 }) },
                         cpu: searches.map { s in s.records.contains { $0.cpuSeconds != nil } ? s.records.map { $0.cpuSeconds ?? 0 } : nil })
        page += "<p class=\"note\">Seconds of the trials in the order they finished: training (solid; epochs with validation, "
            + "process start-up and test evaluation excluded) and CPU (dashed, where the journal records it). "
            + "Several workers run trials side by side, so wall time is shorter.</p>\n"
        for (s, records) in searches {
            page += "<h2>Best trials\(searches.count > 1 ? ": " + escape(s.name) : "")</h2>\n" + bestTable(records)
            if records.contains(where: { $0.donor != nil }) {
                page += "<h2>Donor graph\(searches.count > 1 ? ": " + escape(s.name) : "")</h2>\n" + donorGraph(records)
            }
        }
        return page + "</body></html>\n"
    }

    /// The reports' shared style: no element wider than the page (wide tables scroll inside
    /// their box, figures shrink), numbers never wrap.
    static let css = """
    body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;padding:0 1em;color:#222;max-width:1100px}
    table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}th{white-space:normal}
    th{background:#f3f3f3}td.l,th.l{text-align:left}td.wrap{white-space:normal}h2{margin-top:1.6em}
    svg{background:#fff;max-width:100%;height:auto}.scroll{max-width:100%;overflow-x:auto}
    .note{color:#666}.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em}
    """

    /// A trial's hyperparameters in a few words, numbers at 3 significant digits.
    static func describe(_ c: TrialConfig) -> String {
        "conv \(c.convLayers)x\(c.filters) k\(c.kernel) hidden \(c.hidden.map(String.init).joined(separator: ",")) "
            + "lr \(formatSignificant(c.lr)) batch \(c.batchSize)"
    }

    static func bestTable(_ records: [StudyEvent]) -> String {
        let best = records.filter { $0.status == .finished && ($0.validationLoss ?? .nan).isFinite }
            .sorted { ($0.validationLoss!, $0.id) < ($1.validationLoss!, $1.id) }.prefix(10)
        var t = "<div class=\"scroll\"><table><tr><th class=\"l\">trial</th><th class=\"l\">config</th><th class=\"l\">donor</th><th>val loss</th>"
            + "<th>val acc</th><th>test acc</th><th>training s</th><th>CPU s</th></tr>\n"
        for r in best {
            t += "<tr><td class=\"l\">\(escape(r.id))</td><td class=\"l\">\(escape(r.config.map(describe) ?? "-"))</td><td class=\"l\">\(escape(r.donor ?? "-"))</td>"
                + "<td>\(fixed(r.validationLoss!, 4))</td><td>\(r.validationAccuracy.map { formatPercent($0) } ?? "-")</td>"
                + "<td>\(r.testAccuracy.map { formatPercent($0) } ?? "-")</td><td>\(seconds(r.seconds ?? 0))</td>"
                + "<td>\(r.cpuSeconds.map { seconds($0) } ?? "-")</td></tr>\n"
        }
        t += "</table></div>\n"
        let failed = records.filter { $0.status == .failed }
        if !failed.isEmpty {
            t += "<p>Failed trials:</p><div class=\"scroll\"><table><tr><th class=\"l\">trial</th><th class=\"l\">config</th><th class=\"l\">error</th></tr>\n"
            for r in failed.prefix(20) {
                t += "<tr><td class=\"l\">\(escape(r.id))</td><td class=\"l\">\(escape(r.config.map(describe) ?? "-"))</td><td class=\"l wrap\">\(escape(r.error ?? ""))</td></tr>\n"
            }
            t += "</table></div>\n"
        }
        return t
    }

    // MARK: Figures

    static let palette = SVGFigure.palette

    /// Quartiles by linear interpolation (numpy's default); `sorted` non-empty and finite.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let pos = q * Double(sorted.count - 1)
        let lo = clampedInt(pos, 0...(sorted.count - 1)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }

    static func boxPlot(_ groups: [(String, [Double])], unit: String) -> String {
        let groups = groups.map { ($0.0, $0.1.filter(\.isFinite)) }.filter { !$0.1.isEmpty }
        guard !groups.isEmpty else { return "<p class=\"note\">No finished multi-layer trials.</p>\n" }
        let width = Double(160 * groups.count + 90), height = 300.0
        let fr = Chart.Frame(x: 70, y: 16, width: width - 80, height: 230)
        let y = Chart.Axis(groups.flatMap(\.1))
        let x = Chart.Axis([0, 1])
        var s = Chart.open(width: width, height: height)
            + Chart.axes(fr, x: x, y: y, xLabel: "", yLabel: unit, xLabels: false)
        func py(_ v: Double) -> Double { fr.py(v, y) ?? fr.y + fr.height }
        for (i, (label, values)) in groups.enumerated() {
            let v = values.sorted()
            let q1 = quantile(v, 0.25), q2 = quantile(v, 0.5), q3 = quantile(v, 0.75), iqr = q3 - q1
            let wlo = v.first { $0 >= q1 - 1.5 * iqr } ?? v[0], whi = v.last { $0 <= q3 + 1.5 * iqr } ?? v[v.count - 1]
            let cx = fr.x + 80 + Double(i) * 160, half = 30.0
            let color = palette[i % palette.count]
            s += "<g><title>\(escape(label)): n=\(v.count), min \(formatSignificant(v[0])), quartiles \(formatSignificant(q1)) / "
                + "\(formatSignificant(q2)) / \(formatSignificant(q3)), max \(formatSignificant(v[v.count - 1]))</title>"
            s += "<line x1=\"\(f(cx))\" x2=\"\(f(cx))\" y1=\"\(f(py(whi)))\" y2=\"\(f(py(wlo)))\" stroke=\"#555\"/>"
            s += "<rect x=\"\(f(cx - half))\" y=\"\(f(py(q3)))\" width=\"\(f(2 * half))\" height=\"\(f(max(1, py(q1) - py(q3))))\" fill=\"\(color)\" fill-opacity=\"0.35\" stroke=\"\(color)\"/>"
            s += "<line x1=\"\(f(cx - half))\" x2=\"\(f(cx + half))\" y1=\"\(f(py(q2)))\" y2=\"\(f(py(q2)))\" stroke=\"#000\" stroke-width=\"2\"/>"
            for o in v where o < wlo || o > whi {
                s += "<circle cx=\"\(f(cx))\" cy=\"\(f(py(o)))\" r=\"2.5\" fill=\"none\" stroke=\"#555\"/>"
            }
            s += "</g>\n<text x=\"\(f(cx))\" y=\"\(f(fr.y + fr.height + 18))\" text-anchor=\"middle\">\(escape(label))</text>"
            s += "<text x=\"\(f(cx))\" y=\"\(f(fr.y + fr.height + 32))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">n=\(v.count), median \(formatSignificant(q2))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// Cumulative seconds over trials finished, one line per search (training seconds) and,
    /// where given, a dashed one of its CPU seconds; x and y ticks at round values.
    static func cumulative(_ series: [(String, [Double])], what: String = "training", cpu: [[Double]?] = []) -> String {
        func sums(_ xs: [Double]) -> [Double] { xs.reduce(into: [0.0]) { $0.append($0.last! + ($1.isFinite ? $1 : 0)) } }
        let lines = series.map { (name: $0.0, values: sums($0.1)) }
        let cpuLines = cpu.map { $0.map(sums) }
        let maxN = max(1, lines.map { $0.values.count - 1 }.max() ?? 1)
        let x = Chart.Axis([0, Double(maxN)], integer: true)
        let y = Chart.Axis(lines.flatMap(\.values) + cpuLines.flatMap { $0 ?? [] }, includeZero: true)
        var entries: [(colour: String, name: String)] = []
        for (i, l) in lines.enumerated() {
            let colour = palette[i % palette.count]
            entries.append((colour, "\(l.name): \(seconds(l.values.last ?? 0)) s \(what)"))
            if i < cpuLines.count, let c = cpuLines[i] { entries.append((colour, "\(l.name): \(seconds(c.last ?? 0)) s CPU (dashed)")) }
        }
        let legend = Chart.legend(entries, x: 70, y: 12, width: 620)
        let fr = Chart.Frame(x: 70, y: 18 + legend.height, width: 620, height: 220)
        var s = Chart.open(width: 710, height: fr.y + fr.height + 44) + legend.svg
            + Chart.axes(fr, x: x, y: y, xLabel: "trials finished (of \(maxN))", yLabel: "cumulative seconds")
        for (i, l) in lines.enumerated() {
            let colour = palette[i % palette.count]
            s += Chart.polyline(l.values.enumerated().map { (Double($0.offset), $0.element) }, fr, x: x, y: y,
                                colour: colour, title: "\(l.name): \(what) seconds")
            if i < cpuLines.count, let c = cpuLines[i] {
                s += Chart.polyline(c.enumerated().map { (Double($0.offset), $0.element) }, fr, x: x, y: y,
                                    colour: colour, dash: "6,4", title: "\(l.name): CPU seconds")
            }
        }
        return s + "</svg>\n"
    }

    /// Trials in columns by conv layers (each sorted by validation loss, best at the top), each
    /// labelled with the start of its id; an arrow from each donor to the trials it fed. Hover
    /// a trial for its full id, hyperparameters, scores and seconds.
    static func donorGraph(_ records: [StudyEvent]) -> String {
        let columns = Dictionary(grouping: records, by: { $0.config?.convLayers ?? 0 }).sorted { $0.key < $1.key }
        let rows = max(1, columns.map(\.value.count).max() ?? 1)
        let rowH = max(5.0, min(18.0, 1200.0 / Double(rows)))
        let labelled = rowH >= 12
        let colW = 260.0, top = 84.0
        let width = colW * Double(columns.count) + 40, height = top + rowH * Double(rows) + 24
        var pos: [String: (Double, Double)] = [:]
        let best = records.filter { $0.status == .finished && ($0.validationLoss ?? .nan).isFinite }
            .min { ($0.validationLoss!, $0.id) < ($1.validationLoss!, $1.id) }?.id
        var s = Chart.open(width: width, height: height)
        s += "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" "
            + "orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#0072B2\"/></marker></defs>\n"
        // Legend.
        let legend: [(String, String)] = [("#888", "from scratch"), ("#0072B2", "with a donor"), ("#D55E00", "failed")]
        var lx = 20.0
        for (colour, name) in legend {
            s += "<circle cx=\"\(f(lx + 5))\" cy=\"14\" r=\"4\" fill=\"\(colour)\"/><text x=\"\(f(lx + 14))\" y=\"14\" dy=\"0.35em\">\(name)</text>\n"
            lx += 24 + Double(name.count) * 6.5
        }
        s += "<circle cx=\"\(f(lx + 5))\" cy=\"14\" r=\"5\" fill=\"#0072B2\" stroke=\"#000\" stroke-width=\"2\"/>"
            + "<text x=\"\(f(lx + 14))\" y=\"14\" dy=\"0.35em\">best</text>\n"
        lx += 60
        s += "<line x1=\"\(f(lx))\" y1=\"14\" x2=\"\(f(lx + 30))\" y2=\"14\" stroke=\"#0072B2\" marker-end=\"url(#arrow)\"/>"
            + "<text x=\"\(f(lx + 36))\" y=\"14\" dy=\"0.35em\">donor to trial (its conv layers copied and frozen)</text>\n"
        for (c, (layers, rs)) in columns.enumerated() {
            let x = 30.0 + colW * Double(c)
            s += "<text x=\"\(f(x))\" y=\"\(f(top - 20))\" font-size=\"12\" font-weight=\"bold\">\(layers) conv layer\(layers == 1 ? "" : "s") "
                + "(\(rs.count) trial\(rs.count == 1 ? "" : "s"))</text>\n"
            for (r, rec) in rs.sorted(by: { ($0.validationLoss ?? .infinity, $0.id) < ($1.validationLoss ?? .infinity, $1.id) }).enumerated() {
                pos[rec.id] = (x, top + rowH * Double(r))
            }
        }
        for rec in records {
            guard let d = rec.donor, let a = pos[d], let b = pos[rec.id] else { continue }
            // From the right of the donor's label to the left of the trial's dot.
            let x0 = a.0 + (labelled ? 150 : 6), x1 = b.0 - 7, mid = (x0 + x1) / 2
            s += "<path d=\"M\(f(x0)),\(f(a.1)) C\(f(mid)),\(f(a.1)) \(f(mid)),\(f(b.1)) \(f(x1)),\(f(b.1))\" fill=\"none\" "
                + "stroke=\"#0072B2\" stroke-opacity=\"0.45\" marker-end=\"url(#arrow)\"><title>\(escape(d + " -> " + rec.id))</title></path>\n"
        }
        for rec in records {
            guard let p = pos[rec.id] else { continue }
            let color = rec.status == .failed ? "#D55E00" : (rec.donor == nil ? "#888" : "#0072B2")
            var tip = "\(rec.id): \(rec.config.map(describe) ?? "-")\nval loss \(rec.validationLoss.map { fixed($0, 4) } ?? "-")"
                + ", val acc \(rec.validationAccuracy.map { formatPercent($0) } ?? "-")"
                + ", training \(seconds(rec.seconds ?? 0)) s" + (rec.cpuSeconds.map { ", CPU \(seconds($0)) s" } ?? "")
            if let d = rec.donor { tip += "\ndonor \(d) (\(plural(rec.reuseLayers ?? 0, "conv layer")) reused)" }
            if rec.status == .failed { tip += "\nfailed: \(rec.error ?? "")" }
            if rec.status == .pruned { tip += "\npruned at epoch \(rec.epochs ?? 0)" }
            s += "<g><title>\(escape(tip))</title><circle cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"\(rec.id == best ? 5 : 4)\" fill=\"\(color)\""
                + "\(rec.id == best ? " stroke=\"#000\" stroke-width=\"2\"" : "")/>"
            if labelled {
                let loss = rec.validationLoss.map { fixed($0, 3) } ?? (rec.status == .failed ? "failed" : "-")
                s += "<text x=\"\(f(p.0 + 9))\" y=\"\(f(p.1))\" dy=\"0.35em\" font-family=\"ui-monospace, monospace\" font-size=\"10\">"
                    + "\(escape(String(rec.id.prefix(8)))) \(loss)</text>"
            }
            s += "</g>\n"
        }
        s += "<text x=\"20\" y=\"36\" fill=\"#666\">each column sorted by validation loss, best at the top; "
            + (labelled ? "labels: trial id (start) and validation loss; " : "") + "hover a trial for details</text>\n"
        return s + "</svg>\n"
    }

    // MARK: Text (all total: see Report/NumberFormat.swift)

    static func escape(_ s: String) -> String { SVGFigure.escape(s) }

    /// SVG coordinates: one decimal, non-finite as 0.
    static func f(_ x: Double) -> String { SVGFigure.fixed(x, 1) }

    static func fixed(_ x: Double, _ digits: Int) -> String { formatFixed(x, digits: digits) }

    /// Seconds in a table: one decimal below 10^4 s, SI above (`12.3k`).
    static func seconds(_ x: Double) -> String { abs(x) < 1e4 ? formatFixed(x, digits: 1) : formatCount(x) }

    static func short(_ x: Double) -> String { formatSignificant(x) }

    static func sci(_ x: Double) -> String { formatCount(x) }
}

extension SearchReport {
    /// Writes `html` to `path` atomically, creating its folder.
    public static func write(_ html: String, to path: String) throws {
        let (folder, _) = FileSystem.split(path)
        try makeDirectory(folder)
        do { try FileSystem.writeAtomically(Array(html.utf8), to: path) } catch {
            throw SearchError("\(path) cannot be written: \(error)")
        }
    }
}
