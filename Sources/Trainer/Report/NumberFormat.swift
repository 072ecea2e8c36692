// Number formatting for progress lines and reports, without Foundation's String(format:).

/// `12.3M`, `4.56G` and the like; never traps (NaN, infinities and huge values print as Swift
/// writes them: `nan`, `inf`, `1e+300`).
public func formatCount(_ x: Double) -> String {
    guard x.isFinite, abs(x) < 1e18 else { return "\(x)" }
    let units: [(Double, String)] = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
    for (scale, suffix) in units where abs(x) >= scale {
        return formatFixed(x / scale, digits: 2) + suffix
    }
    return formatFixed(x, digits: 0)
}

/// Fixed-point formatting without Foundation. Never traps: NaN and infinities print as `nan`,
/// `inf`, `-inf`, and a value too large for exact integer digits (|x| * 10^digits >= 2^53, where
/// the conversion to Int would overflow from about 9.2e18) as Swift's shortest form (`1e+300`).
/// `-0` prints as `0.00`.
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
