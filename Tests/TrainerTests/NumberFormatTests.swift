import XCTest
@testable import Trainer

/// The report formatters are total: every Double, however hostile, gives text and never traps
/// (a journal line with `"seconds": 1e+308` once crashed `search --resume` with SIGILL).
final class NumberFormatTests: XCTestCase {
    static let special: [Double] = [
        0, -0.0, 1, -1, .nan, -.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        .leastNormalMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1e308, -1e308, 1e300, 9.2e18, 9.3e18,
        -9.3e18, 1.8e19, 9_007_199_254_740_992, 9_007_199_254_740_993, 1e15, 999.5, 999.4999, 9.995, 99.95, 0.009996,
        0.01, 1e-5, 1e-300, 5e-324, 0.5, 2.5e9, 81.1e6, 1e21, 9.9999e20, .ulpOfOne,
    ]

    /// The special values, their negatives and scaled neighbours, and random bit patterns
    /// (every exponent, NaN payloads, subnormals).
    static func hostile(random count: Int = 4000) -> [Double] {
        var values = special + special.map { -$0 } + special.flatMap { [$0 * 10, $0 / 10, $0.nextUp, $0.nextDown] }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<count { values.append(Double(bitPattern: rng.next())) }
        return values
    }

    func testEveryFormatterIsTotalOnHostileValues() {
        for x in Self.hostile() {
            for digits in [-3, 0, 1, 2, 4, 15, 40] {
                XCTAssertFalse(formatFixed(x, digits: digits).isEmpty)
                XCTAssertFalse(formatSignificant(x, digits: digits).isEmpty)
                XCTAssertFalse(SVGFigure.fixed(x, digits).isEmpty)
            }
            for text in [formatCount(x), formatSignificant(x), formatPercent(x), pct(x), num(x, 2), signed(x), sci(x),
                         SearchReport.seconds(x), SearchReport.short(x), SearchReport.sci(x), HPOReport.significant(x),
                         ReuseFigures.signed1(x), ReuseFigures.diverging(x)] {
                XCTAssertFalse(text.isEmpty, "\(x)")
            }
            // SVG attributes never carry NaN or inf.
            XCTAssertFalse(SVGFigure.fixed(x, 1).contains("nan") || SVGFigure.fixed(x, 1).contains("inf"), "\(x)")
            XCTAssertEqual(clampedInt(x, 0...10), x.isNaN ? 0 : Int(min(max(x, 0), 10)))
        }
    }

    func testAxesAndChartsAreTotalOnHostileValues() {
        let values = Self.hostile(random: 300)
        for (i, x) in values.enumerated() {
            let y = values[(i * 7 + 3) % values.count]
            for set in [[x], [x, y], [x, 1, 2], [0, y]] {
                let nice = SVGFigure.NiceAxis(set, includeZero: i % 2 == 0)
                XCTAssertLessThan(nice.ticks.count, 100, "\(set)")
                for log in [false, true] {
                    let axis = Chart.Axis(set, log: log, integer: i % 3 == 0)
                    XCTAssertLessThan(axis.ticks.count, 100, "\(set)")
                    for t in axis.ticks { XCTAssertFalse(axis.label(t).isEmpty) }
                    _ = axis.fraction(x)
                }
            }
        }
    }

    func testSignificantDigitsAndOneFlopNotation() {
        XCTAssertEqual(formatCount(81.1e6), "81.1M")
        XCTAssertEqual(formatCount(81_104_512), "81.1M")
        XCTAssertEqual(formatCount(2.5e9), "2.50G")
        XCTAssertEqual(formatCount(123_456), "123k")
        XCTAssertEqual(formatCount(999.6), "1.00k")
        XCTAssertEqual(formatCount(999_600), "1.00M")
        XCTAssertEqual(formatCount(512), "512")
        XCTAssertEqual(formatCount(-4.2e12), "-4.20T")
        XCTAssertEqual(formatCount(1e300), "1e+300")
        XCTAssertEqual(formatCount(.nan), "nan")
        XCTAssertEqual(formatCount(-.infinity), "-inf")
        // FLOPs print the same wherever they come from (no 8.11e7 in one place, 81.10M in another).
        XCTAssertEqual(sci(81.1e6), "81.1M")
        XCTAssertEqual(SearchReport.sci(81.1e6), "81.1M")

        XCTAssertEqual(formatSignificant(0.0015744882086343402), "1.57e-3")
        XCTAssertEqual(formatSignificant(0.25), "0.250")
        XCTAssertEqual(formatSignificant(12.345), "12.3")
        XCTAssertEqual(formatSignificant(1234.5), "1235")
        XCTAssertEqual(formatSignificant(-0.0), "0")
        XCTAssertEqual(formatSignificant(9.9996e-5), "1.00e-4")
        XCTAssertEqual(formatSignificant(5e-324), "4.94e-324")
        XCTAssertEqual(formatSignificant(1e-5, digits: 1), "1e-5")
        XCTAssertEqual(formatSignificant(.infinity), "inf")
        XCTAssertEqual(HPOReport.significant(0.00314159), "3.14e-3")

        XCTAssertEqual(formatFixed(1e308, digits: 1), "1e+308")
        XCTAssertEqual(formatFixed(-0.0, digits: 2), "0.00")
        XCTAssertEqual(formatPercent(0.1234), "12.34%")
        XCTAssertEqual(formatPercent(.nan), "-")
        XCTAssertEqual(SearchReport.seconds(1e308), "1e+308")
        XCTAssertEqual(SearchReport.seconds(12_345), "12.3k")

        XCTAssertEqual(plural(1, "epoch"), "1 epoch")
        XCTAssertEqual(plural(0, "epoch"), "0 epochs")
        XCTAssertEqual(plural(2, "child", "children"), "2 children")
    }

    func testAxisTicksAreRoundNumbers() {
        let y = Chart.Axis([0.37, 2.91])
        XCTAssertEqual(y.ticks.map(y.label), ["0", "1", "2", "3"])
        let small = Chart.Axis([0.012, 0.031])
        XCTAssertEqual(small.ticks.map(small.label), ["0.010", "0.015", "0.020", "0.025", "0.030", "0.035"])
        let n = Chart.Axis([0, 7], integer: true)
        XCTAssertEqual(n.ticks, [0, 2, 4, 6, 8])
        let few = Chart.Axis([0, 2], integer: true)
        XCTAssertEqual(few.ticks.map(few.label), ["0", "1", "2"])
        let log = Chart.Axis([3e-4, 2e-2], log: true)
        XCTAssertEqual(log.ticks.map(log.label), ["1e-4", "1e-3", "0.01", "0.1"])
        let narrow = Chart.Axis([2e-3, 8e-3], log: true)
        XCTAssertEqual(narrow.ticks.map(narrow.label), ["1e-3", "2e-3", "5e-3", "0.01"])
    }
}
