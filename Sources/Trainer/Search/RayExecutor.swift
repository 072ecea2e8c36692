#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Runs trials on a Ray cluster through `python -m strata_ray.driver` (the repo's `python/`),
/// over the driver's stdin/stdout in JSON lines (see `python/strata_ray/driver.py`).
///
/// Each submitted job travels with the files its worker needs (the frozen prefix, and the run
/// directory of a trial interrupted earlier, so it resumes from its checkpoint); every file the
/// trial wrote comes back and is written into the local trial folder, exactly where the local
/// engine would have left it. So the journal, resume and the report do not care which engine ran
/// a trial, and the cluster needs no shared file system. Activation caches (`*.activations`) do
/// not travel either way: they are large and rebuilt where a trial needs them.
///
/// The driver runs trials on warm Ray actors (one per worker slot, each with a long-lived
/// `strata search-worker`, the local engine's protocol), or as a Ray task per trial when the
/// environment has `STRATA_COLD_WORKERS=1`; see the driver's documentation.
public final class RayExecutor: TrialExecutor {
    public let slots: Int
    public let logPath: String
    private var running: [String: TrialJob] = [:]
    private let pid: pid_t
    private var toDriver: Int32
    private let fromDriver: Int32
    private var buffer: [UInt8] = []

    struct Message: Decodable {
        var op: String
        var id: String?
        var outcome: TrialOutcome?
        var error: String?
        var wall: Double?
        var files: [String: String]?
    }

    /// Starts the driver: `python -m strata_ray.driver --address ADDRESS --strata STRATA --slots N
    /// [--cpus C]` with `packagePath` on PYTHONPATH; its stderr (Ray's log) goes to `logPath`. `cpus`:
    /// the CPUs of a Ray started here (`address` local), at least the most threads one job asks for
    /// (each Ray task asks for its job's threads; with fewer CPUs it would wait forever).
    /// `gpusPerTrial`: each trial's share of a GPU (`1/N` for N trials per GPU: Ray's fractional
    /// `num_gpus`, and Ray gives each its card as `CUDA_VISIBLE_DEVICES`); nil: trials ask for none.
    public init(python: String, packagePath: String, address: String, strata: String, slots: Int, cpus: Int? = nil,
                gpusPerTrial: Double? = nil, logPath: String) throws {
        self.slots = max(1, slots)
        self.logPath = logPath
        signal(SIGPIPE, SIG_IGN)   // a dead driver is an error on write, not the end of the search
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else {
            throw SearchError("cannot create pipes for the Ray driver: errno \(errno)")
        }
        // Close-on-exec, so trial processes do not inherit them (dup2 in the driver clears it).
        for fd in input + output { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let argv = [python, "-m", "strata_ray.driver", "--address", address, "--strata", strata, "--slots", "\(self.slots)"]
            + (cpus.map { ["--cpus", "\($0)"] } ?? []) + (gpusPerTrial.map { ["--gpus-per-trial", "\($0)"] } ?? [])
        var env = currentEnvironment().filter { !$0.hasPrefix("PYTHONPATH=") }
        let old = getenv("PYTHONPATH").map { String(cString: $0) }
        env.append("PYTHONPATH=" + packagePath + (old.map { ":" + $0 } ?? ""))
        env.append("PYTHONDONTWRITEBYTECODE=1")   // no __pycache__ in the source tree
        let cArgs = argv.map { strdup($0) } + [nil], cEnv = env.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var child: pid_t = 0
        // posix_spawnp: `python` may be a bare name found on PATH.
        let rc = posix_spawnp(&child, python, &actions, nil, cArgs, cEnv)
        close(input[0])
        close(output[1])
        guard rc == 0 else {
            close(input[1]); close(output[0])
            throw SearchError("cannot start \(python) for the Ray engine: \(String(cString: strerror(rc)))")
        }
        pid = child
        toDriver = input[1]
        fromDriver = output[0]
    }

    deinit { shutdown() }

    public var freeSlots: Int { slots - running.count }

    public func submit(_ job: TrialJob) throws {
        var files: [String: String] = [:]
        if let prefix = job.prefixPath { files["prefix.safetensors"] = try Self.base64(of: prefix) }
        // An interrupted trial resumes from its own run directory.
        for name in FileSystem.contents(ofDirectory: job.runDirectory) ?? [] where Self.travels(name) {
            let path = job.runDirectory + "/" + name
            if FileSystem.kind(of: path) == .file { files["run/" + name] = try Self.base64(of: path) }
        }
        let line = #"{"op":"submit","job":"# + SearchJSON.canonical(job) + #","files":"# + SearchJSON.canonical(files) + "}\n"
        try write(Array(line.utf8))
        running[job.id] = job
    }

    public func poll(timeout: Double) throws -> [(outcome: TrialOutcome, wallSeconds: Double)] {
        let deadline = monotonicNow() + timeout
        var out: [(outcome: TrialOutcome, wallSeconds: Double)] = []
        while true {
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                let message = try SearchJSON.decode(Message.self, from: line, file: "the Ray driver's output")
                guard message.op == "done", let id = message.id, let job = running.removeValue(forKey: id) else { continue }
                for (rel, b64) in message.files ?? [:] {
                    guard !rel.contains(".."), Self.travels(rel), let data = Data(base64Encoded: b64) else { continue }
                    let path = job.directory + "/" + rel
                    try makeDirectory(FileSystem.split(path).directory)
                    try FileSystem.writeAtomically(Array(data), to: path)
                }
                out.append((message.outcome ?? .failed(id, message.error ?? "the Ray driver returned no outcome"), message.wall ?? 0))
            }
            let left = deadline - monotonicNow()
            if !out.isEmpty || left <= 0 { return out }
            var fds = pollfd(fd: fromDriver, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&fds, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            let n = read(fromDriver, &chunk, chunk.count)
            if n > 0 { buffer += chunk[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            throw SearchError("the Ray driver exited (\(plural(running.count, "trial")) running); its log \(logPath): \(logTail())")
        }
    }

    public func cancelAll() { shutdown() }

    /// Closes the driver's input and waits for it to shut Ray down.
    public func shutdown() {
        if toDriver >= 0 { close(toDriver); toDriver = -1 }
        if !running.isEmpty { kill(pid, SIGTERM) }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        running.removeAll()
    }

    private func write(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(toDriver, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SearchError("cannot send a trial to the Ray driver (errno \(errno)); its log \(logPath): \(logTail())")
            }
            done += n
        }
    }

    private func logTail() -> String {
        let bytes = (try? FileSystem.readFile(logPath)) ?? []
        return String(decoding: bytes.suffix(800), as: UTF8.self).split(separator: "\n").suffix(4).joined(separator: " | ")
    }

    /// Whether a trial's file at `path` (relative to its folder) goes to or comes back from a Ray
    /// worker: not hidden files (locks), not activation caches.
    static func travels(_ path: String) -> Bool {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return !name.hasPrefix(".") && !name.hasSuffix(".activations")
    }

    static func base64(of path: String) throws -> String {
        do { return Data(try FileSystem.readFile(path)).base64EncodedString() } catch let e as SystemCallError {
            throw SearchError("\(path) cannot be read: \(e.message)")
        }
    }
}
