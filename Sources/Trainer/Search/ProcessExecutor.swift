#if canImport(Glibc)
import Glibc
#endif

/// Runs trials in child processes: warm workers that serve trial after trial (the default of
/// `strata search` and `strata hpo`, see `WarmWorker`), or a process per trial,
/// `<executable> <arguments...> <job.json>` (`warm: false`).
///
/// Why processes and not threads: the CPU backend sets the OpenMP thread count that oneDNN's
/// kernels use, and two backends on two threads of one process would share one team; a child
/// process also keeps a crash (a precondition, an out-of-memory kill) to its trial, and the
/// `job.json` in / `outcome.json` out contract is the one a cluster executor needs anyway.
/// Each child gets `STRATA_SEARCH_PARENT` (it exits when the search process goes away) and each
/// trial's stdout/stderr are in its directory (`stdout.log`, `stderr.log`).
///
/// Warm: `<executable> <arguments...>` starts a worker that reads job paths from a socket at
/// descriptor 3 and answers `done N` (N: the exit status a cold worker would have had), so a
/// trial's outcome is judged exactly as a cold one's. Up to `workers` of them live at once; one
/// that dies is reaped, its trial (if it had one) gets the outcome a cold worker dying the same
/// way gets, and the next `submit` starts a replacement. The other workers' trials go on.
///
/// Worker slots: at most `workers` processes live at once, each holding a slot number 0..<workers
/// (the lowest free one when it starts); `slotEnvironment(k)` is added to the environment of a
/// process in slot k (several trials per GPU: slot k's card, `DeviceSharing.environment(ofSlot:)`).
public final class ProcessExecutor: TrialExecutor {
    public let executable: String
    public let arguments: [String]
    public let workers: Int
    public let warm: Bool
    /// Worker processes started so far (warm: first starts and replacements; cold: one per trial).
    public private(set) var processesStarted = 0
    /// Extra environment of the process in worker slot k (`NAME=value` entries).
    public var slotEnvironment: (Int) -> [String] = { _ in [] }
    private var running: [pid_t: (job: TrialJob, start: Double, slot: Int)] = [:]
    private var pool: [WarmProcess] = []

    /// A warm worker: its pid, the search's end of its socket, and the job it runs.
    final class WarmProcess {
        let pid: pid_t
        let socket: Int32
        let slot: Int
        var job: TrialJob?
        var start = 0.0
        var received: [UInt8] = []
        init(pid: pid_t, socket: Int32, slot: Int) { self.pid = pid; self.socket = socket; self.slot = slot }
    }

    public init(executable: String, arguments: [String], workers: Int, warm: Bool = false) {
        self.executable = executable
        self.arguments = arguments
        self.workers = max(1, workers)
        self.warm = warm
    }

    /// The executor of `strata search` and `strata hpo`: warm workers (`warmArguments`), or a
    /// process per trial (`coldArguments`) when the environment has `STRATA_COLD_WORKERS=1`
    /// (how bench/warm-workers.md measures what warm workers save).
    public static func local(executable: String, warmArguments: [String], coldArguments: [String], workers: Int) -> ProcessExecutor {
        let cold = getenv("STRATA_COLD_WORKERS").map { String(cString: $0) == "1" } ?? false
        return ProcessExecutor(executable: executable, arguments: cold ? coldArguments : warmArguments, workers: workers, warm: !cold)
    }

    deinit {
        // Idle workers end when their socket closes; a busy one (never, after the engine's
        // last poll or cancelAll) is stopped.
        for w in pool where w.job != nil { kill(w.pid, SIGTERM) }
        for w in pool { close(w.socket) }
        for w in pool { var s: Int32 = 0; waitpid(w.pid, &s, 0) }
    }

    public var freeSlots: Int { workers - (warm ? pool.filter { $0.job != nil }.count : running.count) }

    public func submit(_ job: TrialJob) throws {
        let jobPath = job.directory + "/job.json"
        guard warm else {
            let slot = freeSlot(taken: running.values.map(\.slot))
            let pid = try spawn(arguments + [jobPath], stdout: job.directory + "/stdout.log", stderr: job.directory + "/stderr.log",
                                channel: nil, trial: job.id, slot: slot)
            running[pid] = (job, monotonicNow(), slot)
            return
        }
        guard !jobPath.contains("\n") else { throw SearchError("\(jobPath): a trial folder's path must not hold a newline") }
        // An idle worker, else a new one; a worker found dead when handed the job is replaced once.
        for _ in 0..<2 {
            let worker = try pool.first(where: { $0.job == nil }) ?? startWorker(trial: job.id)
            if WarmWorker.send(worker.socket, jobPath + "\n") {
                worker.job = job
                worker.start = monotonicNow()
                return
            }
            retire(worker, wait: true)
        }
        throw SearchError("the warm worker for trial \(job.id) ended as soon as it started (see \(job.directory)/stderr.log)")
    }

    private func startWorker(trial: String) throws -> WarmProcess {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SearchError("cannot create a socket for a worker of trial \(trial): \(String(cString: strerror(errno)))")
        }
        // The worker's end must not already be descriptor 3 (dup2 onto itself would keep close-on-exec).
        if fds[1] == WarmWorker.channel {
            let moved = fcntl(fds[1], F_DUPFD_CLOEXEC, 10)
            close(fds[1])
            fds[1] = moved
        }
        defer { close(fds[1]) }
        do {
            let slot = freeSlot(taken: pool.map(\.slot))
            let pid = try spawn(arguments, stdout: "/dev/null", stderr: "/dev/null", channel: fds[1], trial: trial, slot: slot)
            let worker = WarmProcess(pid: pid, socket: fds[0], slot: slot)
            pool.append(worker)
            return worker
        } catch {
            close(fds[0])
            throw error
        }
    }

    /// The lowest slot number not in `taken`.
    private func freeSlot(taken: [Int]) -> Int {
        let used = Set(taken)
        return (0...).first { !used.contains($0) }!
    }

    /// Starts `executable argv` with stdin from /dev/null, stdout and stderr appended to these
    /// files and, when given, `channel` as descriptor 3; in worker slot `slot`'s environment.
    private func spawn(_ argv: [String], stdout: String, stderr: String, channel: Int32?, trial: String, slot: Int) throws -> pid_t {
        let extra = slotEnvironment(slot)
        let replaced = Set(["STRATA_SEARCH_PARENT"] + extra.map { String($0.prefix { $0 != "=" }) })
        var env = currentEnvironment().filter { !replaced.contains(String($0.prefix { $0 != "=" })) }
        env += extra
        env.append("STRATA_SEARCH_PARENT=\(getpid())")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let channel { posix_spawn_file_actions_adddup2(&actions, channel, WarmWorker.channel) }
        var pid: pid_t = 0
        let cArgs = ([executable] + argv).map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        let rc = posix_spawn(&pid, executable, &actions, nil, cArgs, cEnv)
        guard rc == 0 else { throw SearchError("cannot start \(executable) for trial \(trial): \(String(cString: strerror(rc)))") }
        processesStarted += 1
        return pid
    }

    /// Takes `worker` out of the pool and reaps it; its wait status (0 when it was not waited for).
    @discardableResult
    private func retire(_ worker: WarmProcess, wait: Bool) -> Int32 {
        pool.removeAll { $0 === worker }
        close(worker.socket)
        var status: Int32 = 0
        if wait { waitpid(worker.pid, &status, 0) }
        return status
    }

    public func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        let deadline = monotonicNow() + timeout
        var out: [(outcome: TrialOutcome, wallSeconds: Double)] = []
        while true {
            if warm { out += collectWarm() }
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

    /// Answers and deaths of the warm workers since the last look.
    private func collectWarm() -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        var out: [(outcome: TrialOutcome, wallSeconds: Double)] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        for worker in pool {
            // Whether it exited is asked before reading, so that all it wrote is read. Its end of
            // the socket may outlive it (a child it started), so its exit, not only the end of
            // the stream, says it died.
            var status: Int32 = 0
            let exited = waitpid(worker.pid, &status, WNOHANG) == worker.pid
            var closed = false
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(worker.socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 { worker.received += chunk[0..<n]; continue }
                if n < 0 && errno == EINTR { continue }
                closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
                break
            }
            while let newline = worker.received.firstIndex(of: 10) {
                let line = String(decoding: worker.received[..<newline], as: UTF8.self)
                worker.received.removeSubrange(...newline)
                guard let job = worker.job else { continue }
                worker.job = nil
                let code = line.hasPrefix("done ") ? Int32(line.dropFirst(5)) ?? 1 : 1
                out.append((Self.outcome(of: job, status: (code & 0xff) << 8), monotonicNow() - worker.start))
            }
            // A worker that died: its trial (if any) ends as a cold worker's would with that status.
            if exited || closed {
                if exited { retire(worker, wait: false) } else { status = retire(worker, wait: true) }
                if let job = worker.job { out.append((Self.outcome(of: job, status: status), monotonicNow() - worker.start)) }
            }
        }
        return out
    }

    public func cancelAll() {
        for pid in running.keys { kill(pid, SIGTERM) }
        for worker in pool { kill(worker.pid, SIGTERM) }
        for pid in running.keys { var s: Int32 = 0; waitpid(pid, &s, 0) }
        for worker in pool { retire(worker, wait: true) }
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
