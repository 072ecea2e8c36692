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

// formatFixed and formatCount live in Trainer (Report/NumberFormat.swift), where tests reach them.
