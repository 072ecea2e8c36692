#if canImport(Glibc)
import Glibc
#endif

// Every number that a report, summary, table or progress line prints goes through these
// functions (no Foundation `String(format:)`). All are total: NaN, infinities, -0, 1e308 and
// subnormals give text, never a trap, so a hostile journal value cannot crash a report.
//
// One notation throughout: counts and FLOPs with an SI suffix and 3 significant digits (`81.1M`),
// other magnitudes with 3 significant digits (`0.250`, `3.14e-3`), fixed decimals where a column
// needs them (seconds, percentages).

/// `81.1M`, `2.50G`, `512`: 3 significant digits with an SI suffix (k, M, G, T, P, E). NaN and
/// infinities print as `nan`, `inf`, `-inf`; beyond 999.5E as Swift's shortest form (`1e+300`).
public func formatCount(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    var scaled = abs(x), group = 0
    // 999.5 rounds to 1000 at 3 digits: such a value takes the next suffix ("1.00k").
    while scaled >= 999.5 && group < 6 { scaled /= 1000; group += 1 }
    if scaled >= 999.5 { return "\(x)" }
    if group == 0 { return formatFixed(x, digits: 0) }
    let digits = scaled < 9.995 ? 2 : scaled < 99.95 ? 1 : 0
    let suffix = ["", "k", "M", "G", "T", "P", "E"][group]
    return (x < 0 ? "-" : "") + formatFixed(scaled, digits: digits) + suffix
}

/// `digits` (1-15, default 3) significant digits: `0.250`, `12.3`, `1234` between 0.01 and 10^4,
/// `3.14e-3` below, the SI form of `formatCount` above (`12.3k`). `0` for zero (and -0); `nan`,
/// `inf`, `-inf` as Swift writes them.
public func formatSignificant(_ x: Double, digits: Int = 3) -> String {
    guard x.isFinite else { return "\(x)" }
    guard x != 0 else { return "0" }
    let digits = min(max(digits, 1), 15)
    let a = abs(x)
    if a >= 1e4 { return formatCount(x) }
    // a is finite and positive: log10 lies in [-324, 4), safe to convert.
    var e = Int(floor(log10(a)))
    if e >= -2 { return formatFixed(x, digits: max(0, digits - 1 - e)) }
    // Mantissa in [1, 10); two steps keep 10^-e finite for subnormals (e down to -324).
    var m = e < -300 ? a * 1e300 * pow(10, Double(-e - 300)) : a * pow(10, Double(-e))
    if m < 1 { m *= 10; e -= 1 }    // log10 rounding at exact powers of ten
    var text = formatFixed(m, digits: digits - 1)
    if text.hasPrefix("10") {       // 9.996 rounds up to the next power of ten
        m /= 10; e += 1
        text = formatFixed(m, digits: digits - 1)
    }
    return (x < 0 ? "-" : "") + text + "e" + String(e)
}

/// Fixed-point formatting. Never traps: NaN and infinities print as `nan`, `inf`, `-inf`, and a
/// value too large for exact integer digits (|x| * 10^digits >= 2^53, where the conversion to
/// Int would overflow from about 9.2e18) as Swift's shortest form (`1e+300`). `-0` prints as
/// `0.00`; `digits` is clamped to 0...15.
public func formatFixed(_ x: Double, digits: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    let digits = min(max(digits, 0), 15)
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (abs(x) * scale).rounded()
    guard r < 9_007_199_254_740_992 else { return "\(x)" }
    let whole = Int(r / scale)
    var frac = String(Int(r - Double(whole) * scale))
    while frac.count < digits { frac = "0" + frac }
    return (x < 0 && r != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + frac : "")
}

/// `12.34%` for 0.1234 (a fraction); `nan%`-free: non-finite fractions print as `-`.
public func formatPercent(_ fraction: Double, digits: Int = 2) -> String {
    let p = fraction * 100
    return p.isFinite ? formatFixed(p, digits: digits) + "%" : "-"
}

/// `1 epoch`, `2 epochs`, `0 trials`.
public func plural(_ count: Int, _ noun: String, _ plural: String? = nil) -> String {
    "\(count) " + (count == 1 ? noun : plural ?? noun + "s")
}

/// Integer pixel or count from a Double for layout (`Int(x)` traps on NaN and beyond 2^63):
/// NaN gives 0, the rest is clamped to `bounds`.
public func clampedInt(_ x: Double, _ bounds: ClosedRange<Int> = -1_000_000_000...1_000_000_000) -> Int {
    guard !x.isNaN else { return 0 }
    if x <= Double(bounds.lowerBound) { return bounds.lowerBound }
    if x >= Double(bounds.upperBound) { return bounds.upperBound }
    return Int(x)
}
