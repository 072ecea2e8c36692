#if CUDA
import CCuda

/// A failed call into the CUDA runtime, cuBLAS, cuDNN or NVRTC: which library, the raw status,
/// the call's name and the library's own words for the status.
///
/// ```
/// cudaGetDeviceCount failed: CUDA driver version is insufficient for CUDA runtime version
///   (cudart status 35: no NVIDIA driver is loaded, or it is older than CUDA 13.0)
/// ```
public struct CUDAError: Error, CustomStringConvertible, Equatable {
    public enum Library: String, Sendable {
        case cudart, cublas, cudnn, nvrtc
    }

    /// The library's raw status code. A plain struct, not an enum, so that a status this code
    /// does not know (a newer library) is carried and printed instead of trapping.
    public struct Status: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public var description: String { "\(rawValue)" }

        public static let success = Status(rawValue: 0)
        // cudart statuses the backend explains further.
        public static let cudaErrorMemoryAllocation = Status(rawValue: 2)
        public static let cudaErrorInsufficientDriver = Status(rawValue: 35)
        public static let cudaErrorNoDevice = Status(rawValue: 100)
        public static let cudaErrorInvalidDevice = Status(rawValue: 101)
        public static let cudaErrorUnsupportedPtxVersion = Status(rawValue: 222)
        public static let cudaErrorNoKernelImageForDevice = Status(rawValue: 209)
    }

    public let library: Library
    public let status: Status
    /// The failing call (`cudaMalloc`, `cudnnConvolutionForward`, ...), with context where useful.
    public let call: String
    /// Extra text: an NVRTC compile log, a hint.
    public let detail: String?

    public init(library: Library, status: Status, call: String, detail: String? = nil) {
        self.library = library
        self.status = status
        self.call = call
        self.detail = detail
    }

    /// The library's own text for the status (`cudaGetErrorString` and friends; these work with no GPU).
    public var reason: String {
        let text: UnsafePointer<CChar>?
        switch library {
        case .cudart: text = cudaGetErrorString(cudaError_t(rawValue: .init(truncatingIfNeeded: status.rawValue)))
        case .cublas: text = cublasGetStatusString(cublasStatus_t(rawValue: .init(truncatingIfNeeded: status.rawValue)))
        case .cudnn: text = cudnnGetErrorString(cudnnStatus_t(rawValue: .init(truncatingIfNeeded: status.rawValue)))
        case .nvrtc: text = nvrtcGetErrorString(nvrtcResult(rawValue: .init(truncatingIfNeeded: status.rawValue)))
        }
        return text.map { String(cString: $0) } ?? "unknown status"
    }

    /// What a user can do about the common environment failures.
    public var hint: String? {
        guard library == .cudart else { return nil }
        switch status {
        case .cudaErrorInsufficientDriver:
            return "no NVIDIA driver is loaded, or it is older than this CUDA runtime (\(CUDAError.runtimeVersionText))"
        case .cudaErrorNoDevice: return "the driver sees no CUDA GPU"
        case .cudaErrorMemoryAllocation: return "the GPU is out of memory"
        case .cudaErrorUnsupportedPtxVersion, .cudaErrorNoKernelImageForDevice:
            return "the driver cannot run code from this NVRTC; use NVRTC from the driver's CUDA version or older"
        default: return nil
        }
    }

    public var description: String {
        var s = "\(call) failed: \(reason) (\(library) status \(status)"
        if let hint { s += ": \(hint)" }
        s += ")"
        if let detail, !detail.isEmpty { s += "\n\(detail)" }
        return s
    }

    public static func == (a: CUDAError, b: CUDAError) -> Bool {
        a.library == b.library && a.status == b.status && a.call == b.call
    }

    /// "CUDA runtime 13.0" (the version this binary was linked against).
    static var runtimeVersionText: String {
        var v: Int32 = 0
        guard cudaRuntimeGetVersion(&v) == cudaSuccess else { return "CUDA runtime" }
        return "CUDA runtime \(v / 1000).\(v % 1000 / 10)"
    }
}
#endif
