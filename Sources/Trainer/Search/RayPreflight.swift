#if canImport(Glibc)
import Glibc
#endif

/// Checks, before a search or hpo starts a trial, that `--engine ray` can work here: that the
/// Python runs and imports `ray` and the driver. Without it a missing `pip install ray` would
/// show only when the driver died, after the study had begun.
public enum RayPreflight {
    public static func check(python: String, packagePath: String) throws {
        // `ray.init` too: a folder named ray on the path (Ray's own /tmp/ray, when run from /tmp)
        // imports as an empty namespace package.
        let script = "import ray, strata_ray.driver\nif not hasattr(ray, 'init'): raise SystemExit('ModuleNotFoundError: ' + "
            + "'ray here is not the Ray package but ' + str(list(getattr(ray, '__path__', [])) or ray))"
        var err: [Int32] = [0, 0]
        guard pipe(&err) == 0 else { throw SearchError("--engine ray: cannot create a pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        var env = currentEnvironment().filter { !$0.hasPrefix("PYTHONPATH=") }
        let old = getenv("PYTHONPATH").map { String(cString: $0) }
        env.append("PYTHONPATH=" + packagePath + (old.map { ":" + $0 } ?? ""))
        env.append("PYTHONDONTWRITEBYTECODE=1")
        let argv = [python, "-c", script]
        let cArgs = argv.map { strdup($0) } + [nil], cEnv = env.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, python, &actions, nil, cArgs, cEnv)
        close(err[1])
        defer { close(err[0]) }
        guard rc == 0 else {
            throw SearchError("--engine ray: cannot run --python \(python): \(String(cString: strerror(rc)))")
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(err[0], &chunk, chunk.count)
            if n > 0 { output += chunk[0..<n]; if output.count > 1 << 20 { output.removeFirst(output.count - (1 << 20)) } }
            else if n == 0 || errno != EINTR { break }
        }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status != 0 else { return }
        let last = String(decoding: output, as: UTF8.self).split(whereSeparator: \.isNewline).last.map(String.init) ?? "exit status \(status)"
        if last.contains("No module named 'ray'") || last.contains("No module named \"ray\"") {
            throw SearchError("--engine ray: \(python) has no ray package (install it with `\(python) -m pip install ray`, or name another interpreter with --python)")
        }
        throw SearchError("--engine ray: \(python) cannot import ray and the driver in \(packagePath): \(last)")
    }
}
