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

// Shorthands for report text, all total (see NumberFormat.swift).

/// "12.34%" for 0.1234; "-" when not finite.
func pct(_ x: Double) -> String { formatPercent(x) }
/// Fixed decimals; `nan`, `inf` as such.
func num(_ x: Double, _ digits: Int) -> String { formatFixed(x, digits: digits) }
/// "+1.25", "-0.50".
func signed(_ x: Double) -> String { (x > 0 ? "+" : "") + formatFixed(x, digits: 2) }
/// 3 significant digits: 0.123, 1.23e-3, and FLOP counts in the SI form (81.1M), never 8.11e7.
func sci(_ x: Double) -> String { formatSignificant(x) }
