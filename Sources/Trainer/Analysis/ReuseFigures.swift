#if canImport(Glibc)
import Glibc
#endif

/// The two figures of a reuse report, as standalone SVG.
///
/// `heatmap`: one panel per source, layers down, kinds across; a cell's colour is the accuracy
/// change of that single swap (white: none, red: a drop, blue: a gain; the scale is symmetric and
/// printed), its text the change in points; grey cells were not compared (the layer has no such
/// tensor or shapes differ). `scatter`: per source, RMSE (log scale) against the accuracy drop,
/// one colour per kind, so the relation the study asks about can be seen.
public enum ReuseFigures {
    static let kindColours: [String: String] = ["W": "#0072B2", "B": "#56B4E9", "RM": "#D55E00", "RV": "#E69F00",
                                                "RW": "#009E73", "RB": "#CC79A7"]

    /// The kinds asked for that some layer has (a cnn without batch norm has no RM, RV, RW, RB).
    static func presentKinds(_ report: ReuseReport) -> [String] {
        let present = Set(report.rows.map(\.kind))
        return report.kinds.filter { present.contains($0) }.sorted { ParameterKind.order($0) < ParameterKind.order($1) }
    }

    public static func heatmap(_ report: ReuseReport) -> String {
        let kinds = presentKinds(report)
        let layerNames = orderedLayers(report)
        // Widths from the text they hold (about 6 px a character at 10-11 px, 8.5 at 15 px bold),
        // so long layer names (ResNet's) and the title are never cut.
        let cellW = 46.0, cellH = 16.0, gap = 40.0
        let labelW = max(80, Double(layerNames.map(\.count).max() ?? 0) * 6 + 14)
        let panelW = labelW + cellW * Double(max(kinds.count, 1))
        let (lo, hi) = colourRange(report)
        let title = "Accuracy change of \(report.target) when one tensor is swapped in (points)"
        let subtitle = "baseline \(pct(report.baselineAccuracy)) on \(report.testImages) images; colour scale "
            + "\(signed1(lo * 100)) to \(signed1(hi * 100)) points\(report.colorScale == nil ? "" : " (fixed)"); grey: not compared"
        let warning = report.chanceWarning.map { "WARNING: " + $0 }
        let width = max(20 + (panelW + gap) * Double(report.sources.count) + 20, Double(title.count) * 8.5 + 40,
                        Double(subtitle.count) * 6.2 + 40, 320, min(Double(warning?.count ?? 0) * 6.2 + 40, 1400))
        let top = warning == nil ? 92.0 : 112
        let height = top + cellH * Double(layerNames.count) + 70
        var svg = header(width: width, height: height)
        svg += text(20, 26, title, size: 15, bold: true)
        svg += text(20, 46, subtitle, size: 11)
        if let warning { svg += text(20, 64, warning, size: 11, bold: true, colour: "#b00020") }
        for (p, source) in report.sources.enumerated() {
            let x0 = 20 + Double(p) * (panelW + gap)
            svg += text(x0 + labelW, top - 22, "source \(source.source)", size: 12, bold: true)
            for (k, kind) in kinds.enumerated() {
                svg += text(x0 + labelW + cellW * (Double(k) + 0.5), top - 6, kind, size: 11, anchor: "middle")
            }
            for (i, layer) in layerNames.enumerated() {
                let y = top + cellH * Double(i)
                svg += text(x0 + labelW - 6, y + cellH * 0.72, layer, size: 10, anchor: "end")
                for (k, kind) in kinds.enumerated() {
                    let x = x0 + labelW + cellW * Double(k)
                    let row = report.rows.first { $0.source == source.source && $0.layer == layer && $0.kind == kind }
                    let t = row.map { scaled($0.accuracyChange, lo: lo, hi: hi) } ?? 0
                    let fill = row.map { _ in diverging(t) } ?? "#e6e6e6"
                    svg += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cellW))\" height=\"\(f(cellH))\" fill=\"\(fill)\" stroke=\"#ffffff\">"
                        + (row.map { "<title>\(SVGFigure.escape("\(source.source) \(layer) \($0.kind): \(signed1($0.accuracyChange * 100)) points, rmse \(sci($0.rmse))"))</title>" } ?? "")
                        + "</rect>\n"
                    if let row {
                        svg += text(x + cellW / 2, y + cellH * 0.72, signed1(row.accuracyChange * 100), size: 9, anchor: "middle",
                                    colour: abs(t) > 0.6 ? "#ffffff" : "#222222")
                    }
                }
            }
        }
        // Colour bar: lo at the left, 0 in the middle, hi at the right.
        let barY = top + cellH * Double(layerNames.count) + 24
        for i in 0..<21 {
            let v = Double(i - 10) / 10
            svg += "<rect x=\"\(f(20 + Double(i) * 12))\" y=\"\(f(barY))\" width=\"12\" height=\"10\" fill=\"\(diverging(v))\"/>\n"
        }
        svg += text(20, barY + 24, signed1(lo * 100), size: 10)
        svg += text(20 + 126, barY + 24, "0", size: 10, anchor: "middle")
        svg += text(20 + 252, barY + 24, "\(signed1(hi * 100)) points", size: 10, anchor: "end")
        return svg + "</svg>\n"
    }

    /// The heatmap's colour range as fractions: the report's fixed scale, or symmetric up to the
    /// largest change (at least 0.01).
    static func colourRange(_ report: ReuseReport) -> (Double, Double) {
        if let s = report.colorScale, s.count == 2, s[0].isFinite, s[1].isFinite, s[0] < 0, s[1] > 0 {
            return (s[0] / 100, s[1] / 100)
        }
        let largest = report.rows.map { abs($0.accuracyChange) }.filter(\.isFinite).max() ?? 0
        let scale = max(0.01, largest)
        return (-scale, scale)
    }

    /// A change mapped to -1...1: negatives by `lo`, positives by `hi`, clamped.
    static func scaled(_ change: Double, lo: Double, hi: Double) -> Double {
        guard change.isFinite else { return 0 }
        return change < 0 ? -min(1, change / lo) : min(1, change / hi)
    }

    public static func scatter(_ report: ReuseReport) -> String {
        let panelW = 380.0, panelH = 260.0, left = 64.0, top = 84.0, gap = 40.0
        let title = "RMSE between the models' tensors against the accuracy drop of \(report.target)"
        let width = max(20 + (left + panelW + gap) * Double(report.sources.count), Double(title.count) * 8.5 + 40)
        let height = top + panelH + 80
        var svg = header(width: width, height: height)
        svg += text(20, 26, title, size: 15, bold: true)
        let kinds = presentKinds(report)
        var lx = 20.0
        for kind in kinds {
            svg += "<circle cx=\"\(f(lx + 5))\" cy=\"46\" r=\"4\" fill=\"\(kindColours[kind] ?? "#000")\"/>\n"
            svg += text(lx + 13, 50, kind, size: 11)
            lx += 48
        }
        let positive = report.rows.map(\.rmse).filter { $0 > 0 && $0.isFinite }
        let lo = floor(log10(positive.min() ?? 1e-3)), hi = max(lo + 1, ceil(log10(positive.max() ?? 1)))
        let drops = report.rows.map { -$0.accuracyChange * 100 }
        // Ticks at round points (0, 2, 4, ...), the axis from 0 (or the largest gain) up.
        let dropAxis = Chart.Axis(drops + [0, 1])
        let dHi = dropAxis.hi, dLo = dropAxis.lo
        for (p, source) in report.sources.enumerated() {
            let x0 = 20 + Double(p) * (left + panelW + gap) + left
            func px(_ r: Double) -> Double { x0 + (log10(max(r, pow(10, lo))) - lo) / (hi - lo) * panelW }
            func py(_ d: Double) -> Double { top + panelH - (d - dLo) / (dHi - dLo) * panelH }
            svg += "<rect x=\"\(f(x0))\" y=\"\(f(top))\" width=\"\(f(panelW))\" height=\"\(f(panelH))\" fill=\"none\" stroke=\"#888\"/>\n"
            svg += text(x0, top - 10, "source \(source.source)", size: 12, bold: true)
            var e = lo
            while e <= hi {
                svg += "<line x1=\"\(f(px(pow(10, e))))\" y1=\"\(f(top))\" x2=\"\(f(px(pow(10, e))))\" y2=\"\(f(top + panelH))\" stroke=\"#eee\"/>\n"
                svg += text(px(pow(10, e)), top + panelH + 14, "1e\(clampedInt(e))", size: 10, anchor: "middle")
                e += 1
            }
            for t in dropAxis.ticks {
                svg += "<line x1=\"\(f(x0))\" y1=\"\(f(py(t)))\" x2=\"\(f(x0 + panelW))\" y2=\"\(f(py(t)))\" stroke=\"#eee\"/>\n"
                svg += text(x0 - 6, py(t) + 4, dropAxis.label(t), size: 10, anchor: "end")
            }
            svg += text(x0 + panelW / 2, top + panelH + 32, "RMSE (log scale; 0 drawn at the left edge)", size: 11, anchor: "middle")
            svg += "<text x=\"\(f(x0 - 44))\" y=\"\(f(top + panelH / 2))\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 \(f(x0 - 44)) \(f(top + panelH / 2)))\">accuracy drop (points)</text>\n"
            for r in report.rows where r.source == source.source {
                svg += "<circle cx=\"\(f(px(r.rmse)))\" cy=\"\(f(py(-r.accuracyChange * 100)))\" r=\"3.5\" fill=\"\(kindColours[r.kind] ?? "#000")\" fill-opacity=\"0.8\"><title>\(SVGFigure.escape(r.layer)) \(r.kind): rmse \(sci(r.rmse)), \(signed1(r.accuracyChange * 100)) pt</title></circle>\n"
            }
            if let c = source.correlation["all"], let pr = c.pearson {
                svg += text(x0 + 6, top + 16, "Pearson \(num(pr, 2)), Spearman \(c.spearman.map { num($0, 2) } ?? "-") (n=\(c.count))", size: 10)
            }
        }
        return svg + "</svg>\n"
    }

    // MARK: Helpers

    static func orderedLayers(_ report: ReuseReport) -> [String] {
        var seen = Set<String>(), names: [String] = []
        for r in report.layers where seen.insert(r.layer).inserted { names.append(r.layer) }
        return names
    }

    /// -1 (red) ... 0 (white) ... +1 (blue).
    static func diverging(_ v: Double) -> String {
        let t = min(1, abs(v.isFinite ? v : 0))
        let (r, g, b): (Double, Double, Double) = v < 0 ? (202, 0, 32) : (5, 113, 176)
        func mix(_ c: Double) -> Int { clampedInt((255 + (c - 255) * t).rounded(), 0...255) }
        return "rgb(\(mix(r)),\(mix(g)),\(mix(b)))"
    }

    static func header(width: Double, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" font-family=\"sans-serif\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    }

    static func text(_ x: Double, _ y: Double, _ s: String, size: Int, anchor: String = "start", bold: Bool = false,
                     colour: String = "#222222") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\" fill=\"\(colour)\""
            + (bold ? " font-weight=\"bold\"" : "") + ">\(SVGFigure.escape(s))</text>\n"
    }

    static func f(_ x: Double) -> String { SVGFigure.fixed(x, 1) }
    static func signed1(_ x: Double) -> String { (x >= 0.05 ? "+" : "") + formatFixed(x, digits: 1) }
}
