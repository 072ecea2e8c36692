import ArgumentParser
import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// The hidden warm worker command: serves the jobs a search sends on descriptor 3, one after
/// another, keeping the dataset and backends warm (see `WarmWorker`, `ProcessExecutor`).
struct SearchWorker: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search-worker", abstract: "Serve search trials (internal).",
                                                    shouldDisplay: false)

    func run() throws {
        if let p = getenv("STRATA_SEARCH_PARENT"), let pid = Int32(String(cString: p)) { TrialRunner.exitWithParent(pid) }
        WarmWorker.serve()
    }
}
