#if CUDA
import CCuda
import CCudaLoader
#if canImport(Glibc)
import Glibc
#endif

/// The GPU backend: cuDNN for convolutions and batch norm, cuBLAS for GEMM, and NVRTC-compiled
/// kernels (`CUDAKernelSource`) for everything else. It computes what `CPUBackend` computes.
///
/// All work goes to one stream; cuBLAS and cuDNN are bound to it. Kernels are asynchronous:
/// a failing launch or library call is kept as a sticky error and thrown by the next
/// `synchronize` or `download` (the `Backend` contract). TF32 tensor cores are used for GEMM
/// and convolutions unless `strictFP32` is set. With `STRATA_CUDA_SYNC=1` in the environment
/// every launch and library call is followed by a stream wait, so a fault names its call.
///
/// Rank-4 tensors are stored in `layout` order (`STRATA_CUDA_LAYOUT=nhwc|nchw`, read once when the
/// backend is made; CUDALayout.swift): with `.nhwc` channels-last like the CPU backend, with NHWC
/// cuDNN descriptors and the NHWC variants of the NVRTC kernels.
///
/// ```
/// let gpu = try CUDABackend(deviceIndex: 0)          // throws DeviceUnavailable with the reason
/// let x = try gpu.tensor([1, 2, 3], shape: [3])
/// ```
public final class CUDABackend: Backend, @unchecked Sendable {
    public let device: Device
    public let deviceIndex: Int
    public let deviceName: String
    /// Compute capability, e.g. (9, 0).
    public let computeCapability: (major: Int, minor: Int)
    let multiprocessors: Int
    /// The storage order of rank-4 tensors, fixed for the backend's life (plans and descriptors
    /// are made for it).
    public let layout: CUDALayout
    /// Who runs batch norm on channels-last tensors (`STRATA_CUDA_BN`, CUDALayout.swift).
    public let batchNormMode: CUDABatchNormMode
    /// The format convolutions and GEMMs compute in (Precision.swift): `.fp32` (TF32 unless
    /// `strictFP32`), `.bf16` or `.fp16` on tensor cores with FP32 accumulation.
    public let precision: Precision
    /// Full FP32 in GEMM and convolutions (no TF32). Changing it drops the cached convolution
    /// plans, whose algorithms were chosen for the other math mode.
    public var strictFP32: Bool {
        didSet {
            convPlans.removeAll()
            recordFailure { try applyMathMode() }
        }
    }

    let stream: cudaStream_t?
    let blas: cublasHandle_t?
    let dnn: cudnnHandle_t?
    let allocator: CUDAAllocator
    let kernels: CUDAKernelLibrary
    /// Whether this backend's kernels were compiled, read from the disk cache or compiled
    /// earlier in this process (`KernelCache`), and the cache's folder (nil: no disk cache).
    public let kernelOrigin: CUDAKernelCompiler.Origin
    public let kernelCacheDirectory: String?
    let uploadStaging: UploadStaging
    let downloadStaging = PinnedBuffer()
    /// cuDNN plans (keyed by shape and layout) and tensor descriptors (by shape and format), see CUDAConvolution.swift.
    var convPlans: [ConvPlanKey: ConvolutionPlan] = [:]
    var tensorDescriptors: [[Int]: TensorDescriptor] = [:]
    let workspace: DeviceWorkspace
    /// The 16-bit copies of a reduced-precision convolution's or GEMM's operands (CUDAPrecision.swift).
    let reducedScratch: ReducedScratch
    /// `STRATA_CUDA_SYNC=1`: wait after every launch and library call (see `CUDADebug`).
    let syncEveryCall: Bool
    /// `STRATA_CUDA_GRAPHS` (CUDAGraph.swift), and whether `captureGraph` is recording now.
    public let graphMode: CUDAGraphMode
    var capturing = false
    /// The first failure of an asynchronous call, thrown by the next `synchronize`/`download`.
    private var stickyError: Error?

    /// Opens GPU `deviceIndex`: checks driver and device, creates the stream, the cuBLAS and
    /// cuDNN handles, and gets the kernels for the device's architecture: compiled by NVRTC
    /// (seconds) the first time, then from the disk cache (`KernelCache`, `STRATA_KERNEL_CACHE`).
    /// Throws `DeviceUnavailable` with the reason (no driver, no such device, a library failing,
    /// a `STRATA_CUDA_LAYOUT`, `STRATA_CUDA_BN`, `STRATA_CUDA_UPLOAD` or `STRATA_CUDA_GRAPHS` that
    /// is none of its choices). `layout` and `batchNormMode` nil read the environment; with the
    /// layout's variable unset, `batchSize` (the images per training step, when the caller has
    /// one) picks it (`CUDALayout.standard(forBatch:)`).
    public init(deviceIndex: Int, strictFP32: Bool = false, layout: CUDALayout? = nil,
                batchNormMode: CUDABatchNormMode? = nil, batchSize: Int? = nil,
                precision: Precision = .fp32) throws {
        let name = "cuda:\(deviceIndex)"
        func unavailable(_ error: Error) -> DeviceUnavailable {
            DeviceUnavailable(device: name, reason: "\(error)")
        }
        do {
            func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
            self.layout = try layout ?? CUDALayout.choose(environment: environment(CUDALayout.variable), batch: batchSize)
            self.batchNormMode = try batchNormMode ?? CUDABatchNormMode.parse(environment: environment(CUDABatchNormMode.variable))
            uploadStaging = UploadStaging(mode: try CUDAUploadMode.parse(environment: environment(CUDAUploadMode.variable)))
            graphMode = try CUDAGraphMode.parse(environment: environment(CUDAGraphMode.variable))
        } catch { throw unavailable(error) }
        try CUDALibraries.load(device: name)
        var count: Int32 = 0
        do {
            try CUDACalls.cudart("cudaGetDeviceCount") { cudaGetDeviceCount(&count) }
        } catch { throw unavailable(error) }
        guard count > 0 else { throw DeviceUnavailable(device: name, reason: "the driver sees no CUDA GPU") }
        guard deviceIndex >= 0 && deviceIndex < Int(count) else {
            throw DeviceUnavailable(device: name, reason: "there \(count == 1 ? "is 1 GPU" : "are \(count) GPUs") (cuda:0\(count > 1 ? "...cuda:\(count - 1)" : ""))")
        }
        let index = Int32(deviceIndex)
        var major: Int32 = 0, minor: Int32 = 0, sms: Int32 = 0
        var nameBytes = [CChar](repeating: 0, count: 256)
        do {
            try CUDACalls.cudart("cudaSetDevice(\(deviceIndex))") { cudaSetDevice(index) }
            try CUDACalls.cudart("cudaDeviceGetAttribute") { cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index) }
            try CUDACalls.cudart("cudaDeviceGetAttribute") { cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index) }
            try CUDACalls.cudart("cudaDeviceGetAttribute") { cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, index) }
            try CUDACalls.cudart("cudaGetDeviceProperties") { strata_cudaDeviceName(index, &nameBytes, 256) }
        } catch { throw unavailable(error) }
        deviceName = String(cString: nameBytes)
        self.deviceIndex = deviceIndex
        self.device = .cuda(deviceIndex)
        self.computeCapability = (Int(major), Int(minor))
        if let reason = CUDAPrecisionFormats.unsupportedReason(precision, computeCapability: (Int(major), Int(minor))) {
            throw DeviceUnavailable(device: name, reason: reason)
        }
        self.multiprocessors = Int(sms)
        self.strictFP32 = strictFP32
        self.precision = precision

        var s: cudaStream_t?, b: cublasHandle_t?, d: cudnnHandle_t?
        do {
            try CUDACalls.cudart("cudaStreamCreateWithFlags") { cudaStreamCreateWithFlags(&s, UInt32(cudaStreamNonBlocking)) }
            try CUDACalls.cublas("cublasCreate") { cublasCreate_v2(&b) }
            try CUDACalls.cublas("cublasSetStream") { cublasSetStream_v2(b, s) }
            try CUDACalls.cudnn("cudnnCreate") { cudnnCreate(&d) }
            try CUDACalls.cudnn("cudnnSetStream") { cudnnSetStream(d, s) }
        } catch {
            if let d { cudnnDestroy(d) }
            if let b { cublasDestroy_v2(b) }
            if let s { cudaStreamDestroy(s) }
            throw unavailable(error)
        }
        stream = s; blas = b; dnn = d
        allocator = CUDAAllocator()
        workspace = DeviceWorkspace(allocator: allocator)
        reducedScratch = ReducedScratch(allocator: allocator)
        syncEveryCall = CUDADebug.syncEveryCall(getenv("STRATA_CUDA_SYNC").map { String(cString: $0) })
        do {
            let architecture = "sm_\(major)\(minor)"
            let cache = KernelCache(directory: KernelCache.directory(environment: Self.environment(
                [KernelCache.variable, "XDG_CACHE_HOME", "HOME"])))
            var (cubin, origin) = try CUDAKernelCompiler.kernels(architecture: architecture, cache: cache)
            do {
                kernels = try CUDAKernelLibrary(cubin: cubin)
            } catch where origin != .nvrtc {
                // A cached CUBIN the runtime refuses (it passed the checksum): compile and replace it.
                _ = cudaGetLastError()
                (cubin, origin) = try CUDAKernelCompiler.kernels(architecture: architecture, cache: cache, refresh: true)
                kernels = try CUDAKernelLibrary(cubin: cubin)
            }
            kernelOrigin = origin
            kernelCacheDirectory = cache.directory
            try applyMathMode()
        } catch {
            cudnnDestroy(d); cublasDestroy_v2(b); cudaStreamDestroy(s)
            throw unavailable(error)
        }
    }

    /// The variables among `names` that are set.
    static func environment(_ names: [String]) -> [String: String] {
        var values: [String: String] = [:]
        for name in names { if let value = getenv(name) { values[name] = String(cString: value) } }
        return values
    }

    deinit {
        cudaStreamSynchronize(stream)
        convPlans.removeAll()
        tensorDescriptors.removeAll()
        if let dnn { cudnnDestroy(dnn) }
        if let blas { cublasDestroy_v2(blas) }
        if let stream { cudaStreamDestroy(stream) }
    }

    public var name: String {
        "cuda:\(deviceIndex) (\(deviceName), sm_\(computeCapability.major)\(computeCapability.minor), \(CUDAPrecisionFormats.mathName(precision, strictFP32: strictFP32)), \(layout.rawValue.uppercased())\(layout == .nhwc && batchNormMode != .strata ? ", \(batchNormMode.rawValue) BN" : ""))"
    }

    private func applyMathMode() throws {
        try CUDACalls.cublas("cublasSetMathMode") {
            cublasSetMathMode(blas, strictFP32 ? CUBLAS_DEFAULT_MATH : CUBLAS_TF32_TENSOR_OP_MATH)
        }
    }

    // MARK: Errors

    /// Keeps the first failure of a call whose `Backend` method cannot throw.
    @inline(__always)
    func recordFailure(_ body: () throws -> Void) {
        do { try body() } catch { if stickyError == nil { stickyError = error } }
    }

    /// A call that queues work on the stream (a library call, a copy): its status is checked,
    /// and under `STRATA_CUDA_SYNC=1` the stream is waited for, so that an asynchronous fault
    /// is thrown naming this call.
    @inline(__always)
    func queued(_ library: CUDAError.Library, _ call: @autoclosure () -> String, _ body: () -> Int32) throws {
        try CUDACalls.check(library, call(), body)
        if syncEveryCall && !capturing { try allocator.runtime.synchronize(stream, after: call()) }
    }

    @inline(__always)
    func queuedCUDNN(_ call: @autoclosure () -> String, _ body: () -> cudnnStatus_t) throws {
        try queued(.cudnn, call()) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    func queuedCUBLAS(_ call: @autoclosure () -> String, _ body: () -> cublasStatus_t) throws {
        try queued(.cublas, call()) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    @inline(__always)
    func queuedCUDART(_ call: @autoclosure () -> String, _ body: () -> cudaError_t) throws {
        try queued(.cudart, call()) { Int32(truncatingIfNeeded: body().rawValue) }
    }

    /// Throws (once) the first failure since the last check.
    func throwSticky() throws {
        if let error = stickyError { stickyError = nil; throw error }
    }

    // MARK: Memory

    public func allocate(_ shape: [Int]) throws -> Tensor {
        let count = shape.reduce(1, *)
        let (base, size) = try allocator.allocate(bytes: max(1, count) * MemoryLayout<Float>.stride)
        let allocator = self.allocator
        let storage = Storage(device: device, count: count, base: base,
                              release: { allocator.recycle($0, size: size) })
        try queuedCUDART("cudaMemsetAsync") { cudaMemsetAsync(base, 0, max(1, count) * 4, stream) }
        return Tensor(storage: storage, shape: shape)
    }

    /// Copies through pinned staging memory; returns once `source` may be reused (the copy into
    /// staging is synchronous, the transfer to the device is not). The staging region is one no
    /// queued copy still reads (`UploadStaging`), so an upload does not wait for the work queued
    /// before it. `source` is logical row-major: a channels-last destination is filled by a
    /// permute on the device from a flat scratch copy.
    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor) {
        ShapeChecks.upload(source.count, to: destination)
        precondition(destination.device == device, "upload into \(destination) on \(device)")
        guard let src = source.baseAddress, source.count > 0 else { return }
        let bytes = source.count * MemoryLayout<Float>.stride
        recordFailure {
            guard !capturing else {
                // The host's copy into staging would not be part of the graph's replays.
                throw CUDAError(library: .cudart, status: .init(rawValue: 900 /* cudaErrorStreamCaptureUnsupported */),
                                call: "upload while capturing a CUDA graph",
                                detail: "upload into the step's input tensors before CUDAGraph.launch instead")
            }
            let permuted = isPermuted(destination.shape)
            let landing = permuted ? try permuteScratch(source.count) : destination
            let (slot, staging) = try uploadStaging.region(bytes)
            staging.copyMemory(from: src, byteCount: bytes)
            try queuedCUDART("cudaMemcpyAsync(host to device)") {
                cudaMemcpyAsync(landing.rawAddress, staging, bytes, cudaMemcpyHostToDevice, stream)
            }
            try uploadStaging.queued(slot, on: stream)
            if permuted { permuteToStorage(landing, destination, shape: destination.shape) }
        }
    }

    public func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws {
        ShapeChecks.download(source, into: destination.count)
        precondition(source.device == device, "download of \(source) from \(device)")
        try throwSticky()
        guard let dst = destination.baseAddress, source.count > 0 else { return try synchronize() }
        let bytes = source.count * MemoryLayout<Float>.stride
        // A channels-last source is permuted to logical order on the device first.
        var logical = source
        if isPermuted(source.shape) {
            logical = try permuteScratch(source.count)
            permuteToLogical(source, logical, shape: source.shape)
        }
        let staging = try downloadStaging.reserve(bytes)
        try CUDACalls.cudart("cudaMemcpyAsync(device to host)") {
            cudaMemcpyAsync(staging, logical.rawAddress, bytes, cudaMemcpyDeviceToHost, stream)
        }
        try synchronize()
        withExtendedLifetime(logical) {
            UnsafeMutableRawPointer(dst).copyMemory(from: staging, byteCount: bytes)
        }
    }

    /// Copies in logical order: a plain copy between tensors stored alike, a permute between a
    /// channels-last rank-4 tensor and another shape (Flatten's (N, C, H, W) -> (N, C*H*W)).
    public func copy(_ source: Tensor, to destination: Tensor) {
        ShapeChecks.copy(source, to: destination)
        guard source.count > 0 else { return }
        let sourcePermuted = isPermuted(source.shape), destinationPermuted = isPermuted(destination.shape)
        if storedAlike(source.shape, destination.shape) {
            recordFailure {
                try queuedCUDART("cudaMemcpyAsync(device to device)") {
                    cudaMemcpyAsync(destination.rawAddress, source.rawAddress, source.count * 4, cudaMemcpyDeviceToDevice, stream)
                }
            }
        } else if !destinationPermuted {
            permuteToLogical(source, destination, shape: source.shape)
        } else if !sourcePermuted {
            permuteToStorage(source, destination, shape: destination.shape)
        } else {
            // Two channels-last shapes of one count: through logical order in scratch.
            recordFailure {
                let logical = try permuteScratch(source.count)
                permuteToLogical(source, logical, shape: source.shape)
                permuteToStorage(logical, destination, shape: destination.shape)
            }
        }
    }

    /// Asynchronous failures (a kernel fault) surface in the stream wait's own status; see
    /// `CUDARuntime.synchronize` for why this does not read `cudaGetLastError`.
    public func synchronize() throws {
        try throwSticky()
        try allocator.runtime.synchronize(stream)
    }

    /// A device scratch tensor holding `values` (small per-call parameters such as channel means).
    func scratch(_ values: [Float]) throws -> Tensor {
        let t = try allocate([values.count])
        upload(values, to: t)
        return t
    }
}
#endif
