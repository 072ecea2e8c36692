#if canImport(Glibc)
import Glibc
#endif

/// Progress on the terminal: a live bar when stdout is a TTY (redrawn in place at most ~10
/// times a second), plain lines otherwise (logs, CI), one per epoch.
final class ProgressDisplay {
    let interactive: Bool
    private var lastDraw = 0.0
    private var drawn = false

    init(interactive: Bool? = nil) {
        self.interactive = interactive ?? (isatty(STDOUT_FILENO) != 0 && getenv("CI") == nil)
    }

    /// Redraws the bar for batch `done` of `total`; cheap to call every batch: `fields` (which
    /// may read running values back from the device) is evaluated only when the bar redraws.
    func batch(prefix: String, done: Int, total: Int, fields: () -> String) {
        guard interactive else { return }
        let now = monotonicSeconds()
        if done < total && now - lastDraw < 0.1 { return }
        lastDraw = now
        let width = 28
        let filled = total > 0 ? width * done / total : 0
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "")
            + String(repeating: " ", count: max(0, width - filled - 1))
        let line = "\(prefix) [\(bar)] \(done)/\(total) \(fields())"
        fputs("\r\u{1B}[2K" + line, stdout)
        fflush(stdout)
        drawn = true
    }

    /// Ends the bar (if any) and prints a permanent line.
    func line(_ text: String) {
        if drawn { fputs("\r\u{1B}[2K", stdout); drawn = false }
        print(text)
        fflush(stdout)
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// `12.3M`, `4.56G` and the like; never traps (NaN, infinities and huge values print as Swift
/// writes them: `nan`, `inf`, `1e+300`).
func formatCount(_ x: Double) -> String {
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
func formatFixed(_ x: Double, digits: Int) -> String {
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
