#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM as a request to stop, not as the end of the process.
///
/// The CLI installs the handler (`Interruption.install()`); the handler only stores the signal's
/// number (an aligned 32-bit store of a statically initialized global: async-signal-safe). The
/// loops poll `Interruption.check()` at their safe points and stop by throwing
/// `InterruptedError`, which the run's driver turns into an "interrupted" manifest or session:
///
/// - training (`trainEpoch`, so train, grow, in-process trials): before every step. The steps of
///   an unfinished epoch are dropped, not saved: the manifest keeps the last committed checkpoint
///   and `--resume` redoes that epoch from it, bit-identical to a run never stopped. Waiting for
///   the end of the epoch could take minutes; a step takes at most seconds.
/// - a search or hpo coordinator: in its scheduling loop (at most a quarter of a second apart).
///   It stops its workers (each trial continues from its own last checkpoint on `--resume`).
///
/// A second signal while the first is being handled ends the process at once (`_exit`, status
/// 128 + signal). Nothing committed is lost: checkpoints, manifests and journal lines are written
/// to a temporary file and renamed, or appended and fsynced, so a stop at any instant leaves the
/// last committed state.
public enum Interruption {
    /// Installs the handler for SIGINT and SIGTERM (the CLI, once, before a long command).
    public static func install() {
        signal(SIGINT, interruptionHandler)
        signal(SIGTERM, interruptionHandler)
    }

    /// The signal that asked to stop, nil while none did.
    public static var requested: Int32? {
        let s = requestedSignal
        return s == 0 ? nil : s
    }

    /// Throws `InterruptedError` once a stop was requested.
    public static func check() throws {
        if let s = requested { throw InterruptedError(signal: s) }
    }

    /// As if `signal` had arrived (tests; a driver that stops itself).
    public static func request(_ signal: Int32) {
        if requestedSignal == 0 { requestedSignal = signal }
    }

    /// Forgets a request (tests).
    public static func reset() { requestedSignal = 0 }
}

/// Written by the signal handler, read by the loops; 0: no request.
nonisolated(unsafe) private var requestedSignal: Int32 = 0

private let interruptionHandler: @convention(c) (Int32) -> Void = { signal in
    if requestedSignal != 0 {
        // The second signal: stop now. Only async-signal-safe calls here (write, _exit).
        let text: StaticString = "strata: stopped at once (second signal); the last checkpoint and journal lines are kept\n"
        _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
        _exit(128 + signal)
    }
    requestedSignal = signal
}

/// A run or study stopped by SIGINT/SIGTERM at a safe point. `resume` is the command that
/// continues it; the process exits with `exitCode` (130 for SIGINT, 143 for SIGTERM).
public struct InterruptedError: Error, CustomStringConvertible, Equatable, Sendable {
    public var signal: Int32
    /// The command that continues the run (set by the driver that knows its directory).
    public var resume: String?
    /// What was kept, e.g. "the last checkpoint is epoch 3".
    public var detail: String?

    public init(signal: Int32, resume: String? = nil, detail: String? = nil) {
        self.signal = signal
        self.resume = resume
        self.detail = detail
    }

    public var exitCode: Int32 { 128 + signal }

    public var signalName: String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }

    public var description: String {
        "interrupted by \(signalName)" + (detail.map { " (\($0))" } ?? "")
            + (resume.map { "; `\($0)` continues it" } ?? "")
    }
}
