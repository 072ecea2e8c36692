#if canImport(Glibc)
import Glibc
#endif

/// The worker side of a warm `ProcessExecutor`: one process serves trial after trial, so the
/// decoded dataset and its split (`WarmDatasets`) and the backends with their oneDNN / cuDNN
/// plans (`WarmBackends`) are made once per worker instead of once per trial.
///
/// Protocol, on a socket at descriptor `channel`: the search sends a job's path and a newline;
/// the worker runs it (`TrialRunner.run`, which writes `outcome.json` as a cold worker does) and
/// answers `done N` and a newline, N being the exit status a cold `search-trial` process would
/// have ended with (0, 1 failed, `TrialRunner.faultExitStatus`). While a job runs, the worker's
/// stdout and stderr are the trial's `stdout.log` and `stderr.log`; between jobs, /dev/null.
/// The worker ends when the search closes the socket (or goes away: `TrialRunner.exitWithParent`).
public enum WarmWorker {
    /// The descriptor of the worker's end of the socket.
    public static let channel: Int32 = 3

    /// Serves jobs until the channel closes.
    public static func serve(channel fd: Int32 = channel) {
        WarmDatasets.enable()
        WarmBackends.enable()
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let path = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                let status = runJob(path: path)
                if !send(fd, "done \(status)\n") { return }
                continue
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            pending += chunk[0..<n]
        }
    }

    /// Runs the job at `path` with stdout and stderr in its folder; the cold worker's exit status.
    static func runJob(path: String) -> Int32 {
        let folder = FileSystem.split(path).directory
        redirect(stdout: folder + "/stdout.log", stderr: folder + "/stderr.log")
        defer { redirect(stdout: "/dev/null", stderr: "/dev/null") }
        let job: TrialJob
        do { job = try TrialJob.read(from: path) } catch {
            fputs("strata: error: \(error)\n", stderr)
            return 1
        }
        let outcome = TrialRunner.run(job)
        print(encodeJSON(outcome))
        if outcome.fault != nil { return TrialRunner.faultExitStatus }
        return outcome.status == .failed ? 1 : 0
    }

    /// Points descriptors 1 and 2 at these files (appending, as the cold worker's spawn does).
    static func redirect(stdout out: String, stderr err: String) {
        fflush(Glibc.stdout)
        fflush(Glibc.stderr)
        for (target, path) in [(Int32(1), out), (Int32(2), err)] {
            let fd = path == "/dev/null" ? open(path, O_WRONLY | O_CLOEXEC) : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { continue }
            _ = dup2(fd, target)
            close(fd)
        }
    }

    /// Writes `text` whole; false when the search is gone.
    static func send(_ fd: Int32, _ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            bytes = bytes.dropFirst(n)
        }
        return true
    }
}
