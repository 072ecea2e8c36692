/// Plain-text tables and numbers for reports printed in the terminal (no Foundation formatting).
enum TextTable {
    /// Columns padded to their widest cell; the first column left-aligned, the rest right-aligned.
    static func align(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        let widths = first.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in
                c == 0 ? cell + String(repeating: " ", count: widths[c] - cell.count)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// "12.34%" for 0.1234.
func pct(_ x: Double) -> String { num(x * 100, 2) + "%" }
/// Fixed decimals.
func num(_ x: Double, _ digits: Int) -> String { SVGFigure.fixed(x, digits) }
/// "+1.25", "-0.50".
func signed(_ x: Double) -> String { (x > 0 ? "+" : "") + SVGFigure.fixed(x, 2) }
/// 3 significant digits in scientific notation for small values: 1.23e-3.
func sci(_ x: Double) -> String {
    guard x.isFinite, x != 0 else { return x == 0 ? "0" : "\(x)" }
    if abs(x) >= 0.01 && abs(x) < 1e4 { return SVGFigure.fixed(x, 4) }
    var e = 0, m = abs(x)
    while m >= 10 { m /= 10; e += 1 }
    while m < 1 { m *= 10; e -= 1 }
    return (x < 0 ? "-" : "") + SVGFigure.fixed(m, 2) + "e" + String(e)
}
