#if CUDA
import CCuda

/// The one place every CUDA-family C call goes through: it turns a status into a thrown
/// `CUDAError` naming the call, and it is the seam tests use to make any named call fail on a
/// machine without a GPU (`CUDACalls.injectFailure`).
///
/// The call's name is an autoclosure: it is built only when the call fails (or a test hook asks),
/// so a successful launch formats no string.
///
/// ```
/// try CUDACalls.cudart("cudaMalloc(\(bytes) bytes)") { cudaMalloc(&pointer, bytes) }
/// ```
public enum CUDACalls {
    /// Test hook: given (library, call name), a raw status to fail that call with instead of
    /// calling it, or nil to call it. Set it only in tests, with no backend in use on another thread.
    nonisolated(unsafe) public static var injectFailure: ((CUDAError.Library, String) -> Int32?)?

    /// Runs `body` unless a failure is injected for (library, call), and throws its non-zero status.
    @inline(__always)
    static func check(_ library: CUDAError.Library, _ call: @autoclosure () -> String, _ body: () -> Int32) throws {
        if let inject = injectFailure {
            let name = call()
            if let status = inject(library, name), status != 0 {
                throw CUDAError(library: library, status: .init(rawValue: status), call: name)
            }
        }
        let status = body()
        if status != 0 { throw CUDAError(library: library, status: .init(rawValue: status), call: call()) }
    }

    @inline(__always)
    static func cudart(_ call: @autoclosure () -> String, _ body: () -> cudaError_t) throws {
        try check(.cudart, call()) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    static func cublas(_ call: @autoclosure () -> String, _ body: () -> cublasStatus_t) throws {
        try check(.cublas, call()) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    static func cudnn(_ call: @autoclosure () -> String, _ body: () -> cudnnStatus_t) throws {
        try check(.cudnn, call()) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    static func nvrtc(_ call: @autoclosure () -> String, _ body: () -> nvrtcResult) throws {
        try check(.nvrtc, call()) { Int32(truncatingIfNeeded: body().rawValue) }
    }
}

/// The CUDA runtime calls that the allocator, the workspace and synchronisation depend on, as a
/// table of functions: `.real` calls the runtime; tests give a fake (host memory, an
/// out-of-memory limit, a sticky last error, a faulting device) so that this logic runs, and its
/// failure handling is checked, on a machine without a GPU.
struct CUDARuntime {
    /// `cudaMalloc`: the status and the block.
    var malloc: (Int) -> (cudaError_t, UnsafeMutableRawPointer?)
    var free: (UnsafeMutableRawPointer) -> cudaError_t
    var deviceSynchronize: () -> cudaError_t
    var streamSynchronize: (cudaStream_t?) -> cudaError_t
    /// `cudaGetLastError`: returns the last error of any earlier runtime call and resets it.
    var getLastError: () -> cudaError_t

    static let real = CUDARuntime(
        malloc: { bytes in
            var p: UnsafeMutableRawPointer?
            let status = cudaMalloc(&p, bytes)
            return (status, p)
        },
        free: { cudaFree($0) },
        deviceSynchronize: { cudaDeviceSynchronize() },
        streamSynchronize: { cudaStreamSynchronize($0) },
        getLastError: { cudaGetLastError() })

    /// Waits for `stream` and throws the first failure of its work (an asynchronous kernel fault
    /// included). Deliberately not `cudaGetLastError`: that returns the last error of any
    /// earlier call, including one already handled (a recovered out-of-memory) or already thrown.
    func synchronize(_ stream: cudaStream_t?, after call: @autoclosure () -> String? = nil) throws {
        try CUDACalls.cudart(call().map { "cudaStreamSynchronize after \($0)" } ?? "cudaStreamSynchronize") {
            streamSynchronize(stream)
        }
    }

    /// Waits for the whole device before memory is freed (a block may still be used by queued
    /// work). Its status is checked: a fault of earlier work is thrown here, naming this wait,
    /// instead of surfacing later against an unrelated call.
    func synchronizeDevice(before what: @autoclosure () -> String) throws {
        try CUDACalls.cudart("cudaDeviceSynchronize before \(what())") { deviceSynchronize() }
    }

    /// Resets the runtime's last-error state after a failure that was handled, so no later
    /// reader of it sees a failure that did not happen.
    func clearLastError() { _ = getLastError() }
}

/// `STRATA_CUDA_SYNC=1`: wait for the stream after every kernel launch and library call, so
/// that an asynchronous fault is thrown by the call that caused it, naming it (slow; for finding
/// a faulting kernel).
enum CUDADebug {
    /// Whether a value of `STRATA_CUDA_SYNC` turns the mode on (anything but unset, empty, 0, false, no, off).
    static func syncEveryCall(_ value: String?) -> Bool {
        guard let value else { return false }
        return !["", "0", "false", "no", "off"].contains(value.lowercased())
    }
}
#endif
