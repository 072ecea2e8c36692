#if canImport(Glibc)
import Glibc
#endif

/// Figures for a run directory, as standalone SVG text: no dependencies, opens in any browser.
///
/// `growthPanels` draws the incremental-training figure: three panels side by side over a shared
/// epoch axis, (1) validation accuracy in percent, (2) the inference cost of the network as it was
/// at each epoch (FLOPs per image; a step function that rises as stages are inserted), and
/// (3) cumulative training FLOPs. Each series has its own colour, a legend entry, and dashed
/// vertical markers at the epochs where it inserted a stage.
///
/// Lenient with data, since a figure should never stop a run: arrays of different lengths are
/// paired up to the shortest, non-finite values are gaps, and empty or constant data still gets
/// sane axes (never NaN in the output).
///
/// ```swift
/// let svg = SVGFigure.growthPanels(series: [
///     .init(name: "grow (look-ahead)", epochs: [1, 2, 3], accuracy: [0.31, 0.42, 0.47],
///           inferenceFlops: [1e8, 1e8, 3e8], cumulativeTrainingFlops: [2e13, 4e13, 9e13],
///           stageMarkers: [2]),
/// ], title: "ResNet-18 on CIFAR-10")
/// ```
public enum SVGFigure {
    public struct Series: Equatable, Sendable {
        public var name: String
        /// x of every point, in epochs.
        public var epochs: [Double]
        /// Validation accuracy as a fraction in [0, 1]; plotted in percent.
        public var accuracy: [Double]
        /// FLOPs per image of one forward pass of the network trained during that epoch.
        public var inferenceFlops: [Double]
        /// Training FLOPs executed from the start of the run to the end of that epoch.
        public var cumulativeTrainingFlops: [Double]
        /// Epochs after which a stage was inserted.
        public var stageMarkers: [Double]

        public init(name: String, epochs: [Double], accuracy: [Double], inferenceFlops: [Double],
                    cumulativeTrainingFlops: [Double], stageMarkers: [Double] = []) {
            self.name = name
            self.epochs = epochs
            self.accuracy = accuracy
            self.inferenceFlops = inferenceFlops
            self.cumulativeTrainingFlops = cumulativeTrainingFlops
            self.stageMarkers = stageMarkers
        }
    }

    // Okabe-Ito: distinct for colour-blind readers, and in greyscale print mostly.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]

    // Geometry in px.
    // Three panels in 1170 px: the figure fits a 1200 px window with its margins.
    private static let panelWidth = 390.0, plotLeft = 72.0, plotRight = 18.0
    private static let plotTop = 112.0, plotHeight = 260.0

    public static func growthPanels(series: [Series], title: String) -> String {
        let width = panelWidth * 3
        let legend = legendLayout(series.map(\.name), width: width)
        let top = plotTop + legend.extraHeight
        let height = top + plotHeight + 56

        let epochAxis = NiceAxis(series.flatMap { $0.epochs + $0.stageMarkers }, includeZero: true)
        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(fixed(width, 0))" height="\(fixed(height, 0))" \
        viewBox="0 0 \(fixed(width, 0)) \(fixed(height, 0))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <title>\(escape(title))</title>
        <rect x="0" y="0" width="\(fixed(width, 0))" height="\(fixed(height, 0))" fill="white"/>
        <text x="\(fixed(width / 2, 1))" y="28" font-size="18" font-weight="bold" text-anchor="middle">\(escape(title))</text>

        """
        svg += legend.svg

        let panels: [(title: String, yLabel: String, kind: Panel, values: (Series) -> [Double])] = [
            ("Validation accuracy", "accuracy (%)", .accuracy, { $0.accuracy.map { $0 * 100 } }),
            ("Inference cost of the current network", "FLOPs per image", .steps, { $0.inferenceFlops }),
            ("Cumulative training FLOPs", "FLOPs", .cumulative, { $0.cumulativeTrainingFlops }),
        ]
        for (p, panel) in panels.enumerated() {
            let frame = Frame(x: Double(p) * panelWidth + plotLeft, y: top,
                              width: panelWidth - plotLeft - plotRight, height: plotHeight)
            let yAxis = NiceAxis(series.flatMap(panel.values), includeZero: panel.kind != .accuracy)
            svg += "<g>\n"
            svg += axes(frame: frame, x: epochAxis, y: yAxis, si: panel.kind != .accuracy,
                        title: panel.title, yLabel: panel.yLabel)
            for (i, s) in series.enumerated() {
                svg += markers(s.stageMarkers, frame: frame, x: epochAxis, colour: colour(i))
            }
            for (i, s) in series.enumerated() {
                svg += line(s.epochs, panel.values(s), frame: frame, x: epochAxis, y: yAxis,
                            steps: panel.kind == .steps, colour: colour(i), dash: dash(i), name: s.name)
            }
            svg += "</g>\n"
        }
        return svg + "</svg>\n"
    }

    private enum Panel { case accuracy, steps, cumulative }

    struct Frame {
        var x, y, width, height: Double
        func px(_ v: Double, _ a: NiceAxis) -> Double { x + (v - a.lo) / (a.hi - a.lo) * width }
        func py(_ v: Double, _ a: NiceAxis) -> Double { y + height - (v - a.lo) / (a.hi - a.lo) * height }
    }

    private static func colour(_ i: Int) -> String { palette[i % palette.count] }
    // Past the palette, colours repeat; a dash pattern keeps the series apart.
    private static func dash(_ i: Int) -> String? { i < palette.count ? nil : "9,3" }

    // MARK: Pieces

    private static func axes(frame f: Frame, x: NiceAxis, y: NiceAxis, si: Bool, title: String, yLabel: String) -> String {
        var s = """
        <text x="\(fixed(f.x + f.width / 2, 1))" y="\(fixed(f.y - 14, 1))" font-size="14" font-weight="bold" \
        text-anchor="middle">\(escape(title))</text>

        """
        for t in y.ticks {
            let py = fixed(f.py(t, y), 1)
            s += "<line x1=\"\(fixed(f.x, 1))\" y1=\"\(py)\" x2=\"\(fixed(f.x + f.width, 1))\" y2=\"\(py)\" stroke=\"#e3e3e3\"/>\n"
            s += "<line x1=\"\(fixed(f.x - 4, 1))\" y1=\"\(py)\" x2=\"\(fixed(f.x, 1))\" y2=\"\(py)\" stroke=\"#333\"/>\n"
            let label = si ? siLabel(t, axis: y) : plainLabel(t, step: y.step)
            s += "<text x=\"\(fixed(f.x - 7, 1))\" y=\"\(py)\" dy=\"0.35em\" text-anchor=\"end\" fill=\"#333\">\(escape(label))</text>\n"
        }
        let bottom = fixed(f.y + f.height, 1)
        for t in x.ticks {
            let px = fixed(f.px(t, x), 1)
            s += "<line x1=\"\(px)\" y1=\"\(bottom)\" x2=\"\(px)\" y2=\"\(fixed(f.y + f.height + 4, 1))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(px)\" y=\"\(fixed(f.y + f.height + 17, 1))\" text-anchor=\"middle\" fill=\"#333\">\(escape(plainLabel(t, step: x.step)))</text>\n"
        }
        s += "<rect x=\"\(fixed(f.x, 1))\" y=\"\(fixed(f.y, 1))\" width=\"\(fixed(f.width, 1))\" height=\"\(fixed(f.height, 1))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(fixed(f.x + f.width / 2, 1))\" y=\"\(fixed(f.y + f.height + 36, 1))\" text-anchor=\"middle\">epoch</text>\n"
        let cx = fixed(f.x - 56, 1), cy = fixed(f.y + f.height / 2, 1)
        s += "<text x=\"\(cx)\" y=\"\(cy)\" text-anchor=\"middle\" transform=\"rotate(-90 \(cx) \(cy))\">\(escape(yLabel))</text>\n"
        return s
    }

    private static func markers(_ epochs: [Double], frame f: Frame, x: NiceAxis, colour: String) -> String {
        var s = ""
        for m in epochs where m.isFinite {
            let px = fixed(f.px(m, x), 1)
            s += "<line x1=\"\(px)\" y1=\"\(fixed(f.y, 1))\" x2=\"\(px)\" y2=\"\(fixed(f.y + f.height, 1))\" "
                + "stroke=\"\(colour)\" stroke-width=\"1.2\" stroke-dasharray=\"5,4\" opacity=\"0.75\"/>\n"
        }
        return s
    }

    /// The series as polylines (or a step path), broken at non-finite values; lone points as dots.
    /// Steps: the value at epoch i holds over (i-1, i], the epoch it was trained in, so a cost
    /// jumps right at the marker of the stage insertion that caused it.
    private static func line(_ xs: [Double], _ ys: [Double], frame f: Frame, x: NiceAxis, y: NiceAxis,
                             steps: Bool, colour: String, dash: String?, name: String) -> String {
        var runs: [[(Double, Double)]] = [[]]
        for (a, b) in zip(xs, ys) {
            if a.isFinite && b.isFinite { runs[runs.count - 1].append((f.px(a, x), f.py(b, y))) }
            else if !runs[runs.count - 1].isEmpty { runs.append([]) }
        }
        let dashAttribute = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        var s = ""
        for run in runs where !run.isEmpty {
            if run.count == 1 {
                s += "<circle cx=\"\(fixed(run[0].0, 1))\" cy=\"\(fixed(run[0].1, 1))\" r=\"3\" fill=\"\(colour)\">"
                    + "<title>\(escape(name))</title></circle>\n"
                continue
            }
            var d = "M\(fixed(run[0].0, 1)),\(fixed(run[0].1, 1))"
            for (px, py) in run.dropFirst() {
                d += steps ? " V\(fixed(py, 1)) H\(fixed(px, 1))" : " L\(fixed(px, 1)),\(fixed(py, 1))"
            }
            s += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-linejoin=\"round\"\(dashAttribute)>"
                + "<title>\(escape(name))</title></path>\n"
        }
        return s
    }

    /// Legend entries in rows under the title, wrapped to the figure's width; the last entry
    /// explains the dashed markers.
    private static func legendLayout(_ names: [String], width: Double) -> (svg: String, extraHeight: Double) {
        var s = ""
        var x = 24.0, y = 56.0
        var rows = 1
        // No font metrics here: 7 px per character is a fair guess for 12 px sans-serif.
        func place(_ textWidth: Double) {
            if x + 30 + textWidth > width - 24 && x > 24 { x = 24; y += 20; rows += 1 }
        }
        for (i, name) in names.enumerated() {
            let w = Double(name.count) * 7
            place(w)
            let dashAttribute = dash(i).map { " stroke-dasharray=\"\($0)\"" } ?? ""
            s += "<line x1=\"\(fixed(x, 1))\" y1=\"\(fixed(y, 1))\" x2=\"\(fixed(x + 24, 1))\" y2=\"\(fixed(y, 1))\" "
                + "stroke=\"\(colour(i))\" stroke-width=\"3\"\(dashAttribute)/>\n"
            s += "<text x=\"\(fixed(x + 30, 1))\" y=\"\(fixed(y, 1))\" dy=\"0.35em\">\(escape(name))</text>\n"
            x += 30 + w + 24
        }
        let note = "stage inserted"
        place(Double(note.count) * 7)
        s += "<line x1=\"\(fixed(x + 12, 1))\" y1=\"\(fixed(y - 8, 1))\" x2=\"\(fixed(x + 12, 1))\" y2=\"\(fixed(y + 8, 1))\" "
            + "stroke=\"#555\" stroke-width=\"1.2\" stroke-dasharray=\"5,4\"/>\n"
        s += "<text x=\"\(fixed(x + 30, 1))\" y=\"\(fixed(y, 1))\" dy=\"0.35em\" fill=\"#555\">\(note)</text>\n"
        return (s, Double(rows - 1) * 20)
    }

    // MARK: Axes and numbers

    /// An axis range rounded out to a 1-2-5 step, with about `target` ticks.
    struct NiceAxis: Equatable {
        let lo: Double, hi: Double, step: Double
        var ticks: [Double] {
            let first = (lo / step).rounded(), last = (hi / step).rounded()
            // A handful of ticks by construction; the guard keeps hostile data from a huge stride.
            guard first.isFinite && last.isFinite && last - first <= 100 else { return [lo, hi] }
            return stride(from: first, through: last, by: 1).map { $0 * step }
        }

        init(_ values: [Double], includeZero: Bool, target: Double = 5) {
            let finite = values.filter(\.isFinite)
            var lo = finite.min() ?? 0, hi = finite.max() ?? 1
            if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
            // Equal, or equal but for rounding noise far below any tick's resolution.
            if hi - lo <= 1e-12 * max(abs(lo), abs(hi)) {
                hi = lo
                // One value (or all equal): centre it in a band of +-10 % (or 0...1 around zero).
                let pad = lo == 0 ? 1 : abs(lo) * 0.1
                lo = includeZero && lo >= 0 ? 0 : lo - pad
                hi += pad
            }
            // Past ~1e307 the range overflows; such numbers are no FLOP count or accuracy.
            if !(hi - lo).isFinite { lo = -1e300; hi = 1e300 }
            let rough = (hi - lo) / target
            let magnitude = pow(10, floor(log10(rough)))
            let residual = rough / magnitude
            let step = (residual <= 1 ? 1 : residual <= 2 ? 2 : residual <= 5 ? 5 : 10) * magnitude
            // Subnormal ranges underflow the step to 0 or a value that rounds badly: 0...1 instead.
            guard step.isFinite && step > 0 && ((hi - lo) / step).isFinite && (hi - lo) / step <= 100 else {
                self.step = 0.2; self.lo = 0; self.hi = 1
                return
            }
            self.step = step
            self.lo = floor(lo / step) * step
            self.hi = ceil(hi / step) * step
        }
    }

    /// `value` with as many decimals as `step` needs (step 0.5 -> 1 decimal, step 20 -> none).
    static func plainLabel(_ value: Double, step: Double) -> String {
        fixed(value, decimals(for: step))
    }

    /// `value` with an SI suffix shared by the whole axis: 0, 500M, 1G, 1.5G -> 0, 0.5G, 1G, 1.5G.
    static func siLabel(_ value: Double, axis: NiceAxis) -> String {
        let largest = max(abs(axis.lo), abs(axis.hi))
        let group = largest >= 1000 && largest.isFinite ? min(6, clampedInt(floor(log10(largest) / 3))) : 0
        let divisor = pow(1000, Double(group))
        if value == 0 { return "0" }
        let suffix = ["", "k", "M", "G", "T", "P", "E"][group]
        var text = fixed(value / divisor, decimals(for: axis.step / divisor))
        // Drop trailing zeros of the fraction ("1.50G" -> "1.5G") for a lighter axis.
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text + suffix
    }

    private static func decimals(for step: Double) -> Int {
        guard step > 0 && step.isFinite else { return 0 }
        return max(0, min(12, -clampedInt(floor(log10(step) + 1e-9))))
    }

    /// Fixed-point text without Foundation's `String(format:)`: "-1.50" for (-1.5, 2).
    /// Non-finite values print as "0", so a figure never carries NaN.
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        value.isFinite ? formatFixed(value, digits: decimals) : "0"
    }

    /// Text safe inside an element or an attribute value.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            case _ where c.value < 0x20 && c != "\t" && c != "\n" && c != "\r": out += "\u{FFFD}"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
