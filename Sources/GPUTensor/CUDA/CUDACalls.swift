#if CUDA
import CCuda

/// The one place every CUDA-family C call goes through: it turns a status into a thrown
/// `CUDAError` naming the call, and it is the seam tests use to make any named call fail on a
/// machine without a GPU (`CUDACalls.injectFailure`).
///
/// ```
/// try CUDACalls.cudart("cudaMalloc") { cudaMalloc(&pointer, bytes) }
/// ```
public enum CUDACalls {
    /// Test hook: given (library, call name), a raw status to fail that call with instead of
    /// calling it, or nil to call it. Set it only in tests, with no backend in use on another thread.
    nonisolated(unsafe) public static var injectFailure: ((CUDAError.Library, String) -> Int32?)?

    /// Runs `body` unless a failure is injected for (library, call), and throws its non-zero status.
    @inline(__always)
    static func check(_ library: CUDAError.Library, _ call: String, _ body: () -> Int32) throws {
        if let inject = injectFailure, let status = inject(library, call), status != 0 {
            throw CUDAError(library: library, status: .init(rawValue: status), call: call)
        }
        let status = body()
        if status != 0 { throw CUDAError(library: library, status: .init(rawValue: status), call: call) }
    }

    @inline(__always)
    static func cudart(_ call: String, _ body: () -> cudaError_t) throws {
        try check(.cudart, call) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    static func cublas(_ call: String, _ body: () -> cublasStatus_t) throws {
        try check(.cublas, call) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    static func cudnn(_ call: String, _ body: () -> cudnnStatus_t) throws {
        try check(.cudnn, call) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    static func nvrtc(_ call: String, _ body: () -> nvrtcResult) throws {
        try check(.nvrtc, call) { Int32(truncatingIfNeeded: body().rawValue) }
    }
}
#endif
