import CDNNLLoader
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The CPU backend's parallel loops on libgomp's thread team, the one oneDNN runs on.
///
/// Why not Dispatch: libdnnl uses OpenMP, and libgomp's idle threads spin for 300,000 `pause`
/// loops after each parallel region (10-20 ms on Sapphire Rapids, ~140 cycles a `pause`) unless
/// OMP_WAIT_POLICY=passive, which CDNNLLoader sets before it loads libdnnl (and with it libgomp).
/// Even waiting passively, a second pool of threads doubles the wake-ups and lets two pools
/// contend for two cores; on one team the thread oneDNN just used picks up the next loop.
/// libgomp's entry points (GCC's `GOMP_parallel` ABI) are looked up once libdnnl is loaded,
/// with Dispatch as the fallback if it cannot be.
enum OpenMPTeam {
    private typealias Parallel = @convention(c) (
        @convention(c) (UnsafeMutableRawPointer?) -> Void, UnsafeMutableRawPointer?, UInt32, UInt32) -> Void
    private typealias IntGetter = @convention(c) () -> Int32
    private typealias IntSetter = @convention(c) (Int32) -> Void

    private static func symbol<T>(_ name: String, as: T.Type) -> T? {
        guard strata_dnnl_load(nil, 0) == 0, let p = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(p, to: T.self)
    }

    private static let parallel = symbol("GOMP_parallel", as: Parallel.self)
    private static let threadNumber = symbol("omp_get_thread_num", as: IntGetter.self)
    private static let teamSize = symbol("omp_get_num_threads", as: IntGetter.self)
    private static let setNumThreads = symbol("omp_set_num_threads", as: IntSetter.self)

    /// Sets the calling thread's OpenMP thread count (a per-thread setting in OpenMP), which
    /// oneDNN uses when it creates and runs primitives.
    static func setThreads(_ n: Int) { setNumThreads?(Int32(n)) }

    private struct Job {
        let parts: Int
        let body: (Int) -> Void
    }

    /// Runs `body(p)` for every p in `0..<parts`, in parallel on `parts` threads, and returns
    /// when all have finished.
    static func run(parts: Int, _ body: (Int) -> Void) {
        guard parts > 1 else {
            if parts == 1 { body(0) }
            return
        }
        guard let parallel, threadNumber != nil, teamSize != nil else {
            DispatchQueue.concurrentPerform(iterations: parts, execute: body)
            return
        }
        withoutActuallyEscaping(body) { body in
            var job = Job(parts: parts, body: body)
            withUnsafeMutablePointer(to: &job) { pointer in
                parallel({ context in
                    let job = context!.assumingMemoryBound(to: Job.self).pointee
                    // A team smaller than asked for (a thread limit) still covers every part.
                    let t = Int(OpenMPTeam.threadNumber!()), size = max(1, Int(OpenMPTeam.teamSize!()))
                    for p in stride(from: t, to: job.parts, by: size) { job.body(p) }
                }, UnsafeMutableRawPointer(pointer), UInt32(parts), 0)
            }
        }
    }
}

// How finely the CPU kernels split their loops (every family's CPU file uses these).
extension CPUBackend {
    /// Elements per thread below which a loop is not worth splitting (a dispatch costs a few µs,
    /// about what 32K float loads and stores cost).
    @inline(__always)
    static var minWorkPerThread: Int { 1 << 15 }

    /// The `parallelFor` grain for items that each cost about `itemCost` elements of work.
    @inline(__always)
    static func grain(itemCost: Int) -> Int { max(1, minWorkPerThread / max(1, itemCost)) }
}
