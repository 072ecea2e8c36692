/// `report.html`: one self-contained page (inline SVG and CSS, no script, no network) with the
/// summary of one or more searches, box plots of training time and validation loss of the
/// multi-layer trials with and without reuse, the cumulative search time, the best trials and
/// the donor graph.
public enum SearchReport {
    public static func html(searches: [(summary: SearchSummary, records: [TrialRecord])], title: String) -> String {
        var groupsTime: [(String, [Double])] = [], groupsLoss: [(String, [Double])] = []
        for (s, records) in searches {
            let multi = records.filter { $0.config.convLayers > 1 && $0.status == .finished }
            for (label, rs) in [("scratch", multi.filter { $0.donor == nil }), ("reuse", multi.filter { $0.donor != nil })] where !rs.isEmpty {
                let name = searches.count > 1 ? "\(s.name): \(label)" : label
                groupsTime.append((name, rs.map(\.seconds)))
                groupsLoss.append((name, rs.compactMap(\.validationLoss).filter(\.isFinite)))
            }
        }
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
        table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
        th{background:#f3f3f3}td.l,th.l{text-align:left}h2{margin-top:1.6em}svg{background:#fff}
        .note{color:#666}
        </style></head><body>
        <h1>\(escape(title))</h1>
        <h2>Summary</h2>
        <table><tr><th class="l">search</th><th>reuse</th><th>trials</th><th>failed</th><th>with donor</th>
        <th>search wall s</th><th>training s</th><th>2-3 conv s</th><th>executed FLOP</th><th>skipped FLOP</th><th>best val loss</th><th>its test acc</th></tr>
        """
        for (s, _) in searches {
            page += "<tr><td class=\"l\">\(escape(s.name))</td><td>\(s.reuse.rawValue)</td><td>\(s.trials)</td><td>\(s.failed)</td>"
                + "<td>\(s.withDonor)</td><td>\(s.searchSeconds.map { fixed($0, 1) } ?? "-")</td><td>\(fixed(s.trainingSeconds, 1))</td><td>\(fixed(s.multiLayerSeconds, 1))</td>"
                + "<td>\(sci(s.flopsExecuted))</td><td>\(sci(s.flopsSkipped))</td>"
                + "<td>\(s.best.map { fixed($0.validationLoss, 4) } ?? "-")</td>"
                + "<td>\(s.best?.testAccuracy.map { fixed($0 * 100, 2) + "%" } ?? "-")</td></tr>\n"
        }
        page += "</table>\n"
        page += "<h2>Training time of the 2-3 conv-layer trials</h2>\n" + boxPlot(groupsTime, unit: "seconds per trial")
        page += "<h2>Validation loss of the 2-3 conv-layer trials</h2>\n" + boxPlot(groupsLoss, unit: "lowest validation loss")
        page += "<h2>Cumulative search time</h2>\n" + cumulative(searches.map { ($0.summary.name, $0.records.map(\.seconds)) })
        page += "<p class=\"note\">Training seconds of the trials in the order they finished (epochs with validation; "
            + "process start-up and test evaluation excluded). Several workers run trials side by side, so wall time is shorter.</p>\n"
        for (s, records) in searches {
            page += "<h2>Best trials\(searches.count > 1 ? ": " + escape(s.name) : "")</h2>\n" + bestTable(records)
            if records.contains(where: { $0.donor != nil }) {
                page += "<h2>Donor graph\(searches.count > 1 ? ": " + escape(s.name) : "")</h2>\n" + donorGraph(records)
            }
        }
        return page + "</body></html>\n"
    }

    static func bestTable(_ records: [TrialRecord]) -> String {
        let best = records.filter { $0.status == .finished && ($0.validationLoss ?? .nan).isFinite }
            .sorted { ($0.validationLoss!, $0.id) < ($1.validationLoss!, $1.id) }.prefix(10)
        var t = "<table><tr><th class=\"l\">trial</th><th class=\"l\">config</th><th class=\"l\">donor</th><th>val loss</th><th>val acc</th><th>test acc</th><th>seconds</th></tr>\n"
        for r in best {
            t += "<tr><td class=\"l\">\(r.id)</td><td class=\"l\">\(escape(r.config.shortDescription))</td><td class=\"l\">\(r.donor ?? "-")</td>"
                + "<td>\(fixed(r.validationLoss!, 4))</td><td>\(r.validationAccuracy.map { fixed($0 * 100, 2) + "%" } ?? "-")</td>"
                + "<td>\(r.testAccuracy.map { fixed($0 * 100, 2) + "%" } ?? "-")</td><td>\(fixed(r.seconds, 1))</td></tr>\n"
        }
        let failed = records.filter { $0.status == .failed }
        if !failed.isEmpty {
            t += "</table><p>Failed trials:</p><table><tr><th class=\"l\">trial</th><th class=\"l\">config</th><th class=\"l\">error</th></tr>\n"
            for r in failed.prefix(20) {
                t += "<tr><td class=\"l\">\(r.id)</td><td class=\"l\">\(escape(r.config.shortDescription))</td><td class=\"l\">\(escape(r.error ?? ""))</td></tr>\n"
            }
        }
        return t + "</table>\n"
    }

    // MARK: Figures

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]

    /// Quartiles by linear interpolation (numpy's default).
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }

    static func boxPlot(_ groups: [(String, [Double])], unit: String) -> String {
        let groups = groups.filter { !$0.1.isEmpty }
        guard !groups.isEmpty else { return "<p class=\"note\">No finished multi-layer trials.</p>\n" }
        let width = 160 * groups.count + 90, height = 300, left = 70.0, top = 20.0, plotH = 230.0
        let all = groups.flatMap(\.1)
        var lo = all.min()!, hi = all.max()!
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        let pad = (hi - lo) * 0.05
        lo -= pad; hi += pad
        func y(_ v: Double) -> Double { top + plotH * (1 - (v - lo) / (hi - lo)) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            s += "<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\" stroke=\"#eee\"/>"
                + "<text x=\"\(left - 6)\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\" font-size=\"11\">\(short(v))</text>\n"
        }
        s += "<text x=\"14\" y=\"\(f(top + plotH / 2))\" font-size=\"11\" transform=\"rotate(-90 14 \(f(top + plotH / 2)))\" text-anchor=\"middle\">\(escape(unit))</text>\n"
        for (i, (label, values)) in groups.enumerated() {
            let v = values.sorted()
            let q1 = quantile(v, 0.25), q2 = quantile(v, 0.5), q3 = quantile(v, 0.75), iqr = q3 - q1
            let wlo = v.first { $0 >= q1 - 1.5 * iqr } ?? v[0], whi = v.last { $0 <= q3 + 1.5 * iqr } ?? v[v.count - 1]
            let cx = left + 40 + Double(i) * 160 + 40, half = 30.0
            let color = palette[i % palette.count]
            s += "<line x1=\"\(f(cx))\" x2=\"\(f(cx))\" y1=\"\(f(y(whi)))\" y2=\"\(f(y(wlo)))\" stroke=\"#555\"/>"
            s += "<rect x=\"\(f(cx - half))\" y=\"\(f(y(q3)))\" width=\"\(f(2 * half))\" height=\"\(f(max(1, y(q1) - y(q3))))\" fill=\"\(color)\" fill-opacity=\"0.35\" stroke=\"\(color)\"/>"
            s += "<line x1=\"\(f(cx - half))\" x2=\"\(f(cx + half))\" y1=\"\(f(y(q2)))\" y2=\"\(f(y(q2)))\" stroke=\"#000\" stroke-width=\"2\"/>"
            for o in v where o < wlo || o > whi {
                s += "<circle cx=\"\(f(cx))\" cy=\"\(f(y(o)))\" r=\"2.5\" fill=\"none\" stroke=\"#555\"/>"
            }
            s += "\n<text x=\"\(f(cx))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\" font-size=\"11\">\(escape(label))</text>"
            s += "<text x=\"\(f(cx))\" y=\"\(f(top + plotH + 32))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">n=\(v.count), median \(short(q2))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func cumulative(_ series: [(String, [Double])]) -> String {
        let width = 700, height = 300, left = 70.0, top = 20.0, plotW = 600.0, plotH = 230.0
        let sums = series.map { (name, xs) in (name, xs.reduce(into: [0.0]) { $0.append($0.last! + $1) }) }
        let maxN = max(1, sums.map { $0.1.count - 1 }.max() ?? 1), maxY = max(1e-9, sums.compactMap { $0.1.last }.max() ?? 1)
        func x(_ i: Int) -> Double { left + plotW * Double(i) / Double(maxN) }
        func y(_ v: Double) -> Double { top + plotH * (1 - v / maxY) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\n"
        for k in 0...4 {
            let v = maxY * Double(k) / 4
            s += "<line x1=\"\(left)\" x2=\"\(left + plotW)\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\" stroke=\"#eee\"/>"
                + "<text x=\"\(left - 6)\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\" font-size=\"11\">\(short(v))s</text>\n"
        }
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\" font-size=\"11\">trials finished (of \(maxN))</text>\n"
        for (i, (name, ys)) in sums.enumerated() {
            let pts = ys.enumerated().map { "\(f(x($0.offset))),\(f(y($0.element)))" }.joined(separator: " ")
            let color = palette[i % palette.count]
            s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            s += "<text x=\"\(f(left + 10))\" y=\"\(f(top + 14 + 14 * Double(i)))\" font-size=\"11\" fill=\"\(color)\">\(escape(name)): \(short(ys.last!))s</text>\n"
        }
        return s + "</svg>\n"
    }

    /// Trials in columns by conv layers, an arrow from each donor to the trials it fed; the
    /// best trial is ringed.
    static func donorGraph(_ records: [TrialRecord]) -> String {
        let columns = Dictionary(grouping: records, by: \.config.convLayers).sorted { $0.key < $1.key }
        let rows = max(1, columns.map(\.value.count).max() ?? 1)
        let rowH = max(5.0, min(16.0, 900.0 / Double(rows)))
        let width = 220 * columns.count + 80, height = Int(rowH * Double(rows)) + 60
        var pos: [String: (Double, Double)] = [:]
        let best = records.filter { $0.status == .finished && ($0.validationLoss ?? .nan).isFinite }
            .min { ($0.validationLoss!, $0.id) < ($1.validationLoss!, $1.id) }?.id
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\n"
        for (c, (layers, rs)) in columns.enumerated() {
            let x = 60.0 + 220.0 * Double(c)
            s += "<text x=\"\(f(x))\" y=\"16\" font-size=\"12\" text-anchor=\"middle\">\(layers) conv</text>\n"
            for (r, rec) in rs.sorted(by: { ($0.validationLoss ?? .infinity, $0.id) < ($1.validationLoss ?? .infinity, $1.id) }).enumerated() {
                pos[rec.id] = (x, 34 + rowH * Double(r))
            }
        }
        for rec in records {
            guard let d = rec.donor, let a = pos[d], let b = pos[rec.id] else { continue }
            s += "<line x1=\"\(f(a.0 + 4))\" y1=\"\(f(a.1))\" x2=\"\(f(b.0 - 4))\" y2=\"\(f(b.1))\" stroke=\"#1f77b4\" stroke-opacity=\"0.35\"/>"
        }
        s += "\n"
        for rec in records {
            guard let p = pos[rec.id] else { continue }
            let color = rec.status == .failed ? "#d62728" : (rec.donor == nil ? "#888" : "#1f77b4")
            s += "<circle cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"\(rec.id == best ? 5 : 3)\" fill=\"\(color)\"\(rec.id == best ? " stroke=\"#000\" stroke-width=\"2\"" : "")>"
                + "<title>\(rec.id) \(escape(rec.config.shortDescription)) val loss \(rec.validationLoss.map { fixed($0, 4) } ?? "-")"
                + "\(rec.donor.map { " donor " + $0 } ?? "")</title></circle>"
        }
        s += "\n<text x=\"10\" y=\"\(height - 8)\" font-size=\"11\" fill=\"#666\">each column sorted by validation loss (best at the top); grey: from scratch, blue: with a donor, red: failed, ringed: best</text>\n"
        return s + "</svg>\n"
    }

    // MARK: Text

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func f(_ x: Double) -> String { fixed(x, 1) }

    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "\(x)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (abs(x) * scale).rounded()
        let whole = Int(r / scale)
        var frac = String(Int(r - Double(whole) * scale))
        while frac.count < digits { frac = "0" + frac }
        return (x < 0 && r != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + frac : "")
    }

    static func short(_ x: Double) -> String {
        let a = abs(x)
        if a == 0 { return "0" }
        return a >= 100 ? fixed(x, 0) : a >= 10 ? fixed(x, 1) : a >= 1 ? fixed(x, 2) : fixed(x, 3)
    }

    static func sci(_ x: Double) -> String {
        for (scale, suffix) in [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] where abs(x) >= scale {
            return fixed(x / scale, 2) + suffix
        }
        return fixed(x, 0)
    }
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
