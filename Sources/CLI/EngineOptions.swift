import ArgumentParser
import Trainer

/// Where the trials of `strata search` and `strata hpo` run: worker processes here, or Ray.
struct EngineOptions: ParsableArguments {
    @Option(help: "local (worker processes here) or ray (python -m strata_ray.driver).")
    var engine: String = "local"

    @Option(help: "ray: HOST:PORT of a Ray cluster, or local (a Ray started here with --threads CPUs).")
    var rayAddress: String = "local"

    @Option(help: "ray: the Python that has the ray package.")
    var python: String = "python3"

    @Option(help: "ray: the folder holding strata_ray (default: python/ of the source tree the binary was built in).")
    var rayPackage: String?

    /// The flags of this group, for commands that check which flags were given.
    static let flagNames: Set<String> = ["engine", "ray-address", "python", "ray-package"]

    func validate() throws {
        guard ["local", "ray"].contains(engine) else { throw ValidationError("--engine must be local or ray, not '\(engine)'") }
    }

    /// `makeExecutor` with the engine a study session resolved (`ExecutionRequest`).
    var executorFactory: ExecutorFactory {
        { execution, logPath in
            var options = self
            options.engine = execution.engine
            return try options.makeExecutor(workers: execution.workers, cores: execution.threads, sharing: execution.sharing,
                                            logPath: logPath)
        }
    }

    /// The executor for `workers` trials at once on `cores` CPU threads in all (Ray writes its log
    /// to `logPath`; a local Ray gets `cores` CPUs, so a job of all of them, the hpo's final, runs).
    /// `sharing`: several trials per GPU (worker slots round robin over the cards; on Ray, each
    /// trial asks for 1/N of a GPU).
    func makeExecutor(workers: Int, cores: Int, sharing: DeviceSharing? = nil, logPath: String) throws -> TrialExecutor {
        guard engine == "ray" else {
            let executor = ProcessExecutor.local(executable: selfExecutable(), warmArguments: ["search-worker"], coldArguments: ["search-trial"], workers: workers)
            if let sharing { executor.slotEnvironment = { sharing.environment(ofSlot: $0) } }
            return executor
        }
        try RayPreflight.check(python: python, packagePath: rayPackage ?? defaultRayPackage())
        return try RayExecutor(python: python, packagePath: rayPackage ?? defaultRayPackage(), address: rayAddress,
                               strata: realSelfExecutable(), slots: workers, cpus: max(workers, cores),
                               gpusPerTrial: sharing.map { 1 / Double($0.trialsPerDevice) }, logPath: logPath)
    }
}
