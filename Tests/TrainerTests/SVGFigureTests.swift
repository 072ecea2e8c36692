import XCTest
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif

final class SVGFigureTests: XCTestCase {
    typealias Series = SVGFigure.Series

    /// Three made-up runs shaped like the paper's: a baseline training the full network, and two
    /// growing runs that insert stages (costs per image 90M, 220M, 370M, 560M).
    static func sampleSeries(epochs: Int = 60) -> [Series] {
        let costs = [0.9e8, 2.2e8, 3.7e8, 5.6e8]
        let trainImages = 50_000.0
        func run(_ name: String, inserts: [Int], ceiling: [Double], tau: Double) -> Series {
            var acc: [Double] = [], flops: [Double] = [], cumulative: [Double] = []
            var total = 0.0
            for e in 1...epochs {
                let stage = inserts.filter { $0 < e }.count
                let start = Double(stage == 0 ? 0 : inserts[stage - 1])
                let floor = stage == 0 ? 0.1 : ceiling[stage - 1] - 0.04
                acc.append(ceiling[stage] - (ceiling[stage] - floor) * exp(-(Double(e) - start) / tau))
                flops.append(costs[stage])
                total += 3 * costs[stage] * trainImages
                cumulative.append(total)
            }
            return Series(name: name, epochs: (1...epochs).map(Double.init), accuracy: acc, inferenceFlops: flops,
                          cumulativeTrainingFlops: cumulative, stageMarkers: inserts.map(Double.init))
        }
        return [
            run("grow (look-ahead)", inserts: [12, 24, 36], ceiling: [0.62, 0.78, 0.87, 0.925], tau: 3),
            run("grow (random)", inserts: [15, 30, 42], ceiling: [0.62, 0.76, 0.85, 0.915], tau: 4),
            run("baseline", inserts: [], ceiling: [0.93], tau: 10).withCost(costs[3], trainImages: trainImages),
        ]
    }

    func testSampleIsWellFormedAndNamesEverySeries() throws {
        let series = Self.sampleSeries()
        let svg = SVGFigure.growthPanels(series: series, title: "ResNet-18 on CIFAR-10: growth vs baseline")
        try assertWellFormed(svg)
        assertFiniteNumbers(svg)
        for s in series { XCTAssertTrue(svg.contains(">\(s.name)<"), s.name) }
        for title in ["Validation accuracy", "Inference cost of the current network", "Cumulative training FLOPs"] {
            XCTAssertTrue(svg.contains(title), title)
        }
        // Distinct colours, one per series.
        for colour in SVGFigure.palette.prefix(3) { XCTAssertTrue(svg.contains("stroke=\"\(colour)\""), colour) }
        // Six markers in each of the three panels, plus the legend's sample.
        XCTAssertEqual(svg.components(separatedBy: "stroke-dasharray=\"5,4\"").count - 1, 6 * 3 + 1)
        // SI labels on the FLOPs axes.
        XCTAssertTrue(svg.contains(">600M<") || svg.contains(">0.6G<"), "inference axis labels")
        XCTAssertTrue(svg.contains("P<") || svg.contains("T<"), "cumulative axis labels")

        if let path = ProcessInfo.processInfo.environment["STRATA_SVG_SAMPLE"] {
            try svg.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    func testEscapesText() throws {
        let s = Series(name: "a<b & \"c\" 'd'>", epochs: [1, 2], accuracy: [0.5, 0.6], inferenceFlops: [1, 1],
                       cumulativeTrainingFlops: [1, 2])
        let svg = SVGFigure.growthPanels(series: [s], title: "R&D <test>\u{1}")
        try assertWellFormed(svg)
        XCTAssertTrue(svg.contains("a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"))
        XCTAssertTrue(svg.contains("R&amp;D &lt;test&gt;\u{FFFD}"))
        XCTAssertFalse(svg.contains("\u{1}"))
    }

    func testSinglePointEmptySeriesAndNoSeries() throws {
        let one = Series(name: "one", epochs: [3], accuracy: [0.4], inferenceFlops: [2e8],
                         cumulativeTrainingFlops: [5e12], stageMarkers: [3])
        let empty = Series(name: "empty", epochs: [], accuracy: [], inferenceFlops: [], cumulativeTrainingFlops: [])
        for series in [[one], [empty], [one, empty], []] {
            let svg = SVGFigure.growthPanels(series: series, title: "edge")
            try assertWellFormed(svg)
            assertFiniteNumbers(svg)
            for s in series { XCTAssertTrue(svg.contains(">\(s.name)<")) }
        }
        let svg = SVGFigure.growthPanels(series: [one], title: "edge")
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 3, "a lone point is a dot in each panel")
    }

    func testIdenticalValuesMismatchedLengthsAndNonFiniteValues() throws {
        let flat = Series(name: "flat", epochs: [1, 1, 1], accuracy: [0.5, 0.5, 0.5], inferenceFlops: [0, 0, 0],
                          cumulativeTrainingFlops: [7, 7, 7], stageMarkers: [1])
        let odd = Series(name: "odd", epochs: [1, 2, 3, 4, 5], accuracy: [0.1, .nan, 0.3, 0.4],
                         inferenceFlops: [1e9, .infinity], cumulativeTrainingFlops: [-.infinity, 1, 2, 3, 4, 5, 6],
                         stageMarkers: [.nan, 2])
        for series in [[flat], [odd], [flat, odd]] {
            let svg = SVGFigure.growthPanels(series: series, title: "degenerate")
            try assertWellFormed(svg)
            assertFiniteNumbers(svg)
        }
    }

    func testManySeriesWrapTheLegendAndRepeatColoursWithDashes() throws {
        let many = (0..<12).map { i in
            Series(name: "a rather long series name \(i)", epochs: [1, 2], accuracy: [0.1, 0.2],
                   inferenceFlops: [1, 2], cumulativeTrainingFlops: [1, 3])
        }
        let svg = SVGFigure.growthPanels(series: many, title: "many")
        try assertWellFormed(svg)
        XCTAssertTrue(svg.contains("stroke-dasharray=\"9,3\""))
        let few = SVGFigure.growthPanels(series: Array(many.prefix(1)), title: "many")
        XCTAssertGreaterThan(height(svg), height(few), "wrapped legend rows make room")
    }

    // MARK: Axes and numbers

    func testNiceAxesUseOneTwoFiveSteps() {
        let flops = SVGFigure.NiceAxis([0.9e8, 1.23e9], includeZero: true)
        XCTAssertEqual(flops.step, 5e8)
        XCTAssertEqual(flops.ticks.map { SVGFigure.siLabel($0, axis: flops) }, ["0", "0.5G", "1G", "1.5G"])

        let accuracy = SVGFigure.NiceAxis([31.2, 93.4], includeZero: false)
        XCTAssertEqual(accuracy.ticks, [20, 40, 60, 80, 100])

        let small = SVGFigure.NiceAxis([0.0, 0.013], includeZero: true)
        // rough step 0.013 / 5 = 0.0026 rounds up to 0.005.
        XCTAssertEqual(small.step, 0.005, accuracy: 1e-15)
        XCTAssertEqual(small.ticks.map { SVGFigure.plainLabel($0, step: small.step) }, ["0.000", "0.005", "0.010", "0.015"])

        let kilo = SVGFigure.NiceAxis([0, 2400], includeZero: true)
        XCTAssertEqual(kilo.ticks.map { SVGFigure.siLabel($0, axis: kilo) }, ["0", "0.5k", "1k", "1.5k", "2k", "2.5k"])
        let peta = SVGFigure.NiceAxis([0, 3.1e15], includeZero: true)
        XCTAssertEqual(peta.ticks.map { SVGFigure.siLabel($0, axis: peta) }, ["0", "1P", "2P", "3P", "4P"])
        let under = SVGFigure.NiceAxis([0, 7], includeZero: true)
        XCTAssertEqual(under.ticks.map { SVGFigure.siLabel($0, axis: under) }, ["0", "2", "4", "6", "8"])
    }

    func testDegenerateAxesStayFinite() {
        for (values, zero) in [([Double](), true), ([], false), ([5], false), ([5], true), ([0, 0], false),
                               ([-3, -3], true), ([.nan, .infinity], false), ([1e9, 1e9 + 1e-6], false),
                               ([-1e308, 1e308], false)] {
            let axis = SVGFigure.NiceAxis(values, includeZero: zero)
            XCTAssertTrue(axis.lo.isFinite && axis.hi.isFinite && axis.step > 0 && axis.lo < axis.hi, "\(values)")
            XCTAssertTrue((2...12).contains(axis.ticks.count), "\(values): \(axis.ticks.count) ticks")
            for v in values where v.isFinite && abs(v) < 1e300 { XCTAssertTrue(axis.lo <= v && v <= axis.hi, "\(v) in \(axis)") }
        }
    }

    func testFixedPointText() {
        XCTAssertEqual(SVGFigure.fixed(-1.5, 2), "-1.50")
        XCTAssertEqual(SVGFigure.fixed(12.345, 1), "12.3")
        XCTAssertEqual(SVGFigure.fixed(0.05, 1), "0.1")
        XCTAssertEqual(SVGFigure.fixed(-0.004, 2), "0.00", "no negative zero")
        XCTAssertEqual(SVGFigure.fixed(7, 0), "7")
        XCTAssertEqual(SVGFigure.fixed(.nan, 1), "0")
        XCTAssertEqual(SVGFigure.fixed(-.infinity, 1), "0")
        XCTAssertEqual(Double(SVGFigure.fixed(3e17, 1)), 3e17)
    }

    // MARK: Helpers

    /// A tiny XML checker: tags balance and nest, attributes are quoted, `&` starts an entity.
    private func assertWellFormed(_ xml: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var stack: [String] = []
        var rest = Substring(xml)
        if rest.hasPrefix("<?xml") { rest = rest[rest.range(of: "?>")!.upperBound...] }
        var roots = 0
        while let open = rest.firstIndex(of: "<") {
            try checkText(rest[..<open], file: file, line: line)
            guard let close = rest[open...].firstIndex(of: ">") else { return XCTFail("unclosed tag", file: file, line: line) }
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("/") {
                let name = String(tag.dropFirst())
                guard stack.last == name else { return XCTFail("</\(name)> closes \(stack.last ?? "nothing")", file: file, line: line) }
                stack.removeLast()
                continue
            }
            let selfClosing = tag.hasSuffix("/")
            let body = selfClosing ? tag.dropLast() : tag
            let name = String(body.prefix { $0 != " " && $0 != "\n" })
            XCTAssertFalse(name.isEmpty, "empty tag name", file: file, line: line)
            // Attributes: name="value" pairs, values without < or raw &.
            var attributes = body.dropFirst(name.count)
            while let eq = attributes.firstIndex(of: "=") {
                let afterEq = attributes.index(after: eq)
                guard afterEq < attributes.endIndex, attributes[afterEq] == "\"" else {
                    return XCTFail("unquoted attribute in <\(name)>", file: file, line: line)
                }
                let valueStart = attributes.index(after: afterEq)
                guard let valueEnd = attributes[valueStart...].firstIndex(of: "\"") else {
                    return XCTFail("unterminated attribute in <\(name)>", file: file, line: line)
                }
                try checkText(attributes[valueStart..<valueEnd], file: file, line: line)
                attributes = attributes[attributes.index(after: valueEnd)...]
            }
            if stack.isEmpty { roots += 1 }
            if !selfClosing { stack.append(name) }
        }
        try checkText(rest, file: file, line: line)
        XCTAssertEqual(stack, [], "unclosed elements", file: file, line: line)
        XCTAssertEqual(roots, 1, "one root element", file: file, line: line)
    }

    private func checkText(_ text: Substring, file: StaticString, line: UInt) throws {
        var rest = text
        while let amp = rest.firstIndex(of: "&") {
            let after = rest[amp...]
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains { after.hasPrefix($0) }
            XCTAssertTrue(ok, "raw & in \(text.prefix(60))", file: file, line: line)
            rest = rest[rest.index(after: amp)...]
        }
    }

    /// Every number in a geometry attribute parses and is finite; no NaN anywhere.
    private func assertFiniteNumbers(_ svg: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(svg.contains("NaN") || svg.lowercased().contains("nan"), "NaN in the SVG", file: file, line: line)
        for attribute in ["x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "width", "height"] {
            for piece in svg.components(separatedBy: " \(attribute)=\"").dropFirst() {
                let value = piece.prefix { $0 != "\"" }
                guard let v = Double(value), v.isFinite else {
                    return XCTFail("\(attribute)=\"\(value)\" is not a finite number", file: file, line: line)
                }
            }
        }
        for piece in svg.components(separatedBy: " d=\"").dropFirst() {
            let numbers = piece.prefix { $0 != "\"" }.split { "MLHV, ".contains($0) }
            for n in numbers where Double(n)?.isFinite != true {
                return XCTFail("path number \(n) is not finite", file: file, line: line)
            }
        }
    }

    private func height(_ svg: String) -> Double {
        let piece = svg.components(separatedBy: " height=\"")[1]
        return Double(piece.prefix { $0 != "\"" }) ?? 0
    }
}

private extension SVGFigure.Series {
    /// The same run with a fixed network: constant cost, cumulative FLOPs growing linearly.
    func withCost(_ cost: Double, trainImages: Double) -> Self {
        var s = self
        s.inferenceFlops = epochs.map { _ in cost }
        s.cumulativeTrainingFlops = epochs.map { 3 * cost * trainImages * $0 }
        return s
    }
}
