#if canImport(Glibc)
import Glibc
#endif

/// How the command line asks a study's trials to run. What it does not give comes from how the
/// study first ran (its stored `StudyExecution`), else from the command's defaults.
public struct ExecutionRequest: Sendable {
    /// `--workers`, `--threads`, `--engine` when given.
    public var workers: Int?
    public var threads: Int?
    public var engine: String?
    /// Workers when neither given nor stored; nil: one per core (search), hpo: 1.
    public var defaultWorkers: Int?
    /// `--trials-per-device` when given.
    public var trialsPerDevice: Int?
    /// Several trials per GPU, as planned for this session's study (`withSharing`); its workers
    /// are the default when `--trials-per-device` is given, and for a new search with no
    /// `--workers` (an hpo keeps its own default unless `--trials-per-device` is given).
    public var sharing: DeviceSharing?

    public init(workers: Int? = nil, threads: Int? = nil, engine: String? = nil, defaultWorkers: Int? = nil) {
        self.workers = workers
        self.threads = threads
        self.engine = engine
        self.defaultWorkers = defaultWorkers
    }

    /// The execution of this session; `was`: the study's stored one (nil for a new study).
    public func resolve(was: StudyExecution?) -> StudyExecution {
        let cores = threads ?? was?.threads ?? max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let shared: Int? = trialsPerDevice != nil ? sharing?.workers : nil
        let sharedByDefault: Int? = defaultWorkers == nil ? sharing?.workers : nil
        let workers: Int = self.workers ?? shared ?? was?.workers ?? sharedByDefault ?? defaultWorkers ?? cores
        var execution = StudyExecution(workers: workers, threads: cores, threadsPerTrial: max(1, cores / workers),
                                       engine: engine ?? was?.engine ?? "local")
        execution.sharing = sharing
        return execution
    }
}

/// Makes the executor of a session (`logPath`: where Ray writes its log).
public typealias ExecutorFactory = (_ execution: StudyExecution, _ logPath: String) throws -> TrialExecutor
