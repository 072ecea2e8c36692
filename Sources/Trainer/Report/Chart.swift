#if canImport(Glibc)
import Glibc
#endif

/// Small SVG charts for the HTML reports (search, hpo): axes with ticks at round values (a
/// 1-2-5 step, or powers of ten on a log axis), points, lines, legends. Static SVG with `<title>`
/// hover texts, no script: the pages open offline in any browser. Lenient with data like
/// `SVGFigure`: non-finite values are left out, empty or constant data still gets sane axes.
enum Chart {
    /// One axis: its range, ticks at round values and their labels.
    struct Axis {
        let lo: Double, hi: Double
        let log: Bool
        let ticks: [Double]

        /// `integer`: ticks at whole numbers only (trial counts). `log`: a log10 axis over the
        /// positive values (decades, with 2 and 5 between when fewer than three decades).
        init(_ values: [Double], log: Bool = false, includeZero: Bool = false, integer: Bool = false, target: Double = 5) {
            let finite = values.filter { $0.isFinite && (!log || $0 > 0) }
            if log {
                let a = finite.min() ?? 1, b = finite.max() ?? 10
                var e0 = floor(log10(a)), e1 = ceil(log10(b))
                if e1 <= e0 { e0 -= 1; e1 += 1 }
                e0 = max(e0, -320); e1 = min(e1, 308)
                var t: [Double] = []
                // Every decade up to 8 of them, then every other one and so on.
                let stride = max(1, ceil((e1 - e0) / 8))
                e1 = e0 + ceil((e1 - e0) / stride) * stride
                var e = e0
                while e <= e1 {
                    let base = pow(10, e)
                    t.append(base)
                    if e1 - e0 < 3 && e < e1 { t += [2 * base, 5 * base] }
                    e += stride
                }
                e1 = min(e1, 308)
                self.lo = pow(10, e0); self.hi = pow(10, e1); self.log = true; self.ticks = t
                return
            }
            let nice = SVGFigure.NiceAxis(finite, includeZero: includeZero, target: target)
            var lo = nice.lo, hi = nice.hi, step = nice.step
            if integer && step < 1 {
                step = 1; lo = floor(lo); hi = max(ceil(hi), lo + 1)
            }
            self.lo = lo; self.hi = hi; self.log = false
            // At most a few dozen ticks, whatever the data (a zero or non-finite step gives none).
            let n = step > 0 && step.isFinite ? (hi - lo) / step : .nan
            self.ticks = n.isFinite && n >= 0 && n < 50
                ? (0...clampedInt(n.rounded(), 0...50)).map { lo + Double($0) * step } : []
        }

        /// Position in 0...1 along the axis; nil for values it cannot place (non-finite, <= 0 on log).
        func fraction(_ v: Double) -> Double? {
            guard v.isFinite, !log || v > 0 else { return nil }
            let t = log ? (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) : (v - lo) / (hi - lo)
            return t.isFinite ? min(max(t, -0.05), 1.05) : nil
        }

        func label(_ v: Double) -> String {
            if log { return formatSignificant(v, digits: 1) }
            let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
            // As many decimals as the step needs: 0, 0.5, 1 and 0.25, 0.5; SI above 10^4.
            if abs(v) >= 1e4 { return formatCount(v) }
            let decimals = step > 0 && step.isFinite ? max(0, min(6, -clampedInt(floor(log10(step) + 1e-9)))) : 0
            return formatFixed(v, digits: decimals)
        }
    }

    /// The plotting area of one chart, in px.
    struct Frame {
        var x, y, width, height: Double
        func px(_ v: Double, _ a: Axis) -> Double? { a.fraction(v).map { x + $0 * width } }
        func py(_ v: Double, _ a: Axis) -> Double? { a.fraction(v).map { y + height - $0 * height } }
    }

    static let palette = SVGFigure.palette

    static func f(_ v: Double) -> String { SVGFigure.fixed(v, 1) }
    static func escape(_ s: String) -> String { SVGFigure.escape(s) }

    static func open(width: Double, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" "
            + "viewBox=\"0 0 \(f(width)) \(f(height))\" font-family=\"system-ui, sans-serif\" font-size=\"11\">\n"
    }

    /// Grid lines, ticks and labels on both axes, the frame, and the axis titles.
    static func axes(_ fr: Frame, x: Axis, y: Axis, xLabel: String, yLabel: String, xLabels: Bool = true) -> String {
        var s = ""
        for t in y.ticks {
            guard let py = fr.py(t, y) else { continue }
            s += "<line x1=\"\(f(fr.x))\" x2=\"\(f(fr.x + fr.width))\" y1=\"\(f(py))\" y2=\"\(f(py))\" stroke=\"#e6e6e6\"/>"
                + "<text x=\"\(f(fr.x - 5))\" y=\"\(f(py))\" dy=\"0.35em\" text-anchor=\"end\" fill=\"#333\">\(escape(y.label(t)))</text>\n"
        }
        if xLabels {
            for t in x.ticks {
                guard let px = fr.px(t, x) else { continue }
                s += "<line x1=\"\(f(px))\" x2=\"\(f(px))\" y1=\"\(f(fr.y + fr.height))\" y2=\"\(f(fr.y + fr.height + 4))\" stroke=\"#333\"/>"
                    + "<text x=\"\(f(px))\" y=\"\(f(fr.y + fr.height + 16))\" text-anchor=\"middle\" fill=\"#333\">\(escape(x.label(t)))</text>\n"
            }
        }
        s += "<rect x=\"\(f(fr.x))\" y=\"\(f(fr.y))\" width=\"\(f(fr.width))\" height=\"\(f(fr.height))\" fill=\"none\" stroke=\"#888\"/>\n"
        s += "<text x=\"\(f(fr.x + fr.width / 2))\" y=\"\(f(fr.y + fr.height + 32))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        let cx = f(fr.x - 46), cy = f(fr.y + fr.height / 2)
        s += "<text x=\"\(cx)\" y=\"\(cy)\" text-anchor=\"middle\" transform=\"rotate(-90 \(cx) \(cy))\">\(escape(yLabel))</text>\n"
        return s
    }

    /// A polyline through the points it can place, broken at the others; `title` on hover.
    static func polyline(_ points: [(Double, Double)], _ fr: Frame, x: Axis, y: Axis, colour: String,
                         width: Double = 2, dash: String? = nil, opacity: Double = 1, title: String) -> String {
        var runs: [[String]] = [[]]
        for (a, b) in points {
            if let px = fr.px(a, x), let py = fr.py(b, y) { runs[runs.count - 1].append("\(f(px)),\(f(py))") }
            else if !runs[runs.count - 1].isEmpty { runs.append([]) }
        }
        let dashAttribute = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
        return runs.filter { $0.count > 1 }.map {
            "<polyline points=\"\($0.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"\(f(width))\" "
                + "stroke-opacity=\"\(SVGFigure.fixed(opacity, 2))\"\(dashAttribute)><title>\(escape(title))</title></polyline>\n"
        }.joined()
    }

    /// One legend row: coloured swatches and names, left to right, wrapping at `width`.
    static func legend(_ entries: [(colour: String, name: String)], x: Double, y: Double, width: Double) -> (svg: String, height: Double) {
        var s = "", cx = x, cy = y
        for (colour, name) in entries {
            let w = 22 + Double(name.count) * 6.5 + 16
            if cx + w > x + width && cx > x { cx = x; cy += 16 }
            s += "<rect x=\"\(f(cx))\" y=\"\(f(cy - 5))\" width=\"12\" height=\"10\" fill=\"\(colour)\"/>"
                + "<text x=\"\(f(cx + 16))\" y=\"\(f(cy))\" dy=\"0.35em\">\(escape(name))</text>\n"
            cx += w
        }
        return (s, cy - y + 16)
    }
}
