#if canImport(Glibc)
import Glibc
#endif

/// Runs each trial in a child process of its own: `<executable> <arguments...> <job.json>`.
///
/// Why processes and not threads: the CPU backend sets the OpenMP thread count that oneDNN's
/// kernels use, and two backends on two threads of one process would share one team; a child process per
/// trial also keeps a crash (a precondition, an out-of-memory kill) to that trial, and the
/// `job.json` in / `outcome.json` out contract is the one a cluster executor needs anyway.
/// Each child gets `STRATA_SEARCH_PARENT` (it exits when the search process goes away) and its
/// stdout/stderr in the trial directory (`stdout.log`, `stderr.log`).
public final class ProcessExecutor: TrialExecutor {
    public let executable: String
    public let arguments: [String]
    public let workers: Int
    private var running: [pid_t: (job: TrialJob, start: Double)] = [:]

    public init(executable: String, arguments: [String], workers: Int) {
        self.executable = executable
        self.arguments = arguments
        self.workers = max(1, workers)
    }

    public var freeSlots: Int { workers - running.count }

    public func submit(_ job: TrialJob) throws {
        let jobPath = job.directory + "/job.json"
        let argv = [executable] + arguments + [jobPath]
        var env = currentEnvironment().filter { !$0.hasPrefix("STRATA_SEARCH_PARENT=") }
        env.append("STRATA_SEARCH_PARENT=\(getpid())")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, job.directory + "/stdout.log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, job.directory + "/stderr.log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        let rc = posix_spawn(&pid, executable, &actions, nil, cArgs, cEnv)
        guard rc == 0 else { throw SearchError("cannot start \(executable) for trial \(job.id): \(String(cString: strerror(rc)))") }
        running[pid] = (job, monotonicNow())
    }

    public func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        let deadline = monotonicNow() + timeout
        var out: [(outcome: TrialOutcome, wallSeconds: Double)] = []
        while true {
            for (pid, entry) in running {
                var status: Int32 = 0
                let r = waitpid(pid, &status, WNOHANG)
                guard r == pid || (r < 0 && errno == ECHILD) else { continue }
                running[pid] = nil
                out.append((Self.outcome(of: entry.job, status: status), monotonicNow() - entry.start))
            }
            if !out.isEmpty || monotonicNow() >= deadline { return out }
            usleep(20_000)
        }
    }

    public func cancelAll() {
        for pid in running.keys { kill(pid, SIGTERM) }
        for pid in running.keys { var s: Int32 = 0; waitpid(pid, &s, 0) }
        running.removeAll()
    }

    /// The child's `outcome.json`, or a failure naming the exit status and the end of stderr.
    /// A worker that ended without `outcome.json` and was stopped from outside (a signal strata
    /// did not send: `cancelAll`'s workers are never polled), or that could not write it (exit
    /// status `faultExitStatus`), met an infrastructure fault, not the trial's result. One that
    /// crashed by itself (SIGSEGV, SIGILL, SIGABRT, ...) failed: that is the trial's.
    static func outcome(of job: TrialJob, status: Int32) -> TrialOutcome {
        let path = TrialRunner.outcomePath(job.directory)
        if let o = try? SearchJSON.read(TrialOutcome.self, from: path) {
            if o.fault == nil && (status & 0x7f) == 0 && (status >> 8) & 0xff == TrialRunner.faultExitStatus {
                var o = o
                o.fault = "\(job.directory): the worker stopped on an infrastructure fault: \(o.error ?? "")"
                return o
            }
            return o
        }
        let signal = status & 0x7f
        let how = signal != 0 ? "killed by signal \(signal)" : "exited with status \((status >> 8) & 0xff)"
        let tail = (try? FileSystem.readFile(job.directory + "/stderr.log")).map {
            String(decoding: $0.suffix(600), as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: " | ")
        } ?? ""
        var outcome = TrialOutcome.failed(job.id, "worker \(how)" + (tail.isEmpty ? "" : ": \(tail)"))
        if signal != 0 && ![SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS].contains(signal) {
            // Sent from outside (kill, the OOM killer, a shutdown); a crash of its own (a trap,
            // a bad access) is the trial's failure.
            outcome.fault = "the worker of trial \(job.id) (\(job.directory)) was \(how), which strata did not send"
        } else if (status >> 8) & 0xff == TrialRunner.faultExitStatus {
            outcome.fault = "the worker of trial \(job.id) stopped on an infrastructure fault without \(path)"
                + (tail.isEmpty ? "" : ": \(tail)")
        }
        return outcome
    }
}

func currentEnvironment() -> [String] {
    var out: [String] = []
    var p = environ
    while let entry = p.pointee {
        out.append(String(cString: entry))
        p += 1
    }
    return out
}
