#if CUDA
import CCuda
import CCudaLoader
#if canImport(Glibc)
import Glibc
#endif

/// NVRTC compilation of `CUDAKernelSource` and launching of its kernels.
///
/// Kernels are compiled at run time to a CUBIN for the device's own `sm_XY` with the NVRTC this
/// binary links, then loaded with the runtime API (`cudaLibraryLoadData`): no `libcuda` link,
/// no `.cu` build step, and no PTX that a driver older than NVRTC would refuse.
public enum CUDAKernelCompiler {
    /// NVRTC's version, e.g. (13, 0).
    public static func nvrtcVersion() throws -> (major: Int, minor: Int) {
        var major: Int32 = 0, minor: Int32 = 0
        try CUDACalls.nvrtc("nvrtcVersion") { CCuda.nvrtcVersion(&major, &minor) }
        return (Int(major), Int(minor))
    }

    /// The options every compile uses: a real architecture (so NVRTC emits SASS), no fused
    /// multiply-add (CPU and GPU round the same way), IEEE division and square root.
    static func options(architecture: String) -> [String] {
        ["--gpu-architecture=\(architecture)", "--fmad=false", "--prec-div=true", "--prec-sqrt=true",
         "--std=c++17", "-default-device"]
    }

    /// Compiles `source` to a CUBIN for `architecture` (`sm_90`). Works without a GPU.
    /// A compile error throws a `CUDAError` whose detail is NVRTC's log.
    public static func compile(_ source: String = CUDAKernelSource.text, architecture: String) throws -> [UInt8] {
        var program: nvrtcProgram?
        try CUDACalls.nvrtc("nvrtcCreateProgram") {
            nvrtcCreateProgram(&program, source, "strata_kernels.cu", 0, nil, nil)
        }
        defer { nvrtcDestroyProgram(&program) }
        let opts = options(architecture: architecture)
        var cStrings = opts.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let compiled: nvrtcResult = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                nvrtcCompileProgram(program, Int32(buffer.count), $0)
            }
        }
        if compiled != NVRTC_SUCCESS {
            throw CUDAError(library: .nvrtc, status: .init(rawValue: Int32(truncatingIfNeeded: compiled.rawValue)),
                            call: "nvrtcCompileProgram(\(architecture))", detail: log(program))
        }
        var size = 0
        try CUDACalls.nvrtc("nvrtcGetCUBINSize") { nvrtcGetCUBINSize(program, &size) }
        var cubin = [UInt8](repeating: 0, count: size)
        try cubin.withUnsafeMutableBytes { raw in
            try CUDACalls.nvrtc("nvrtcGetCUBIN") {
                nvrtcGetCUBIN(program, raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
        }
        return cubin
    }

    /// Where a backend's kernels came from.
    public enum Origin: String, Sendable {
        case process = "compiled earlier in this process"
        case disk = "read from the kernel cache"
        case nvrtc = "compiled by NVRTC"
    }

    /// NVRTC's identity for the cache key: its version, and its file's resolved path, size and
    /// modification time (NVRTC reports no patch level, and 13.0.48 and 13.0.88 differ).
    static func identity() throws -> String {
        let version = try nvrtcVersion()
        let path = String(cString: strata_cuda_nvrtc_path())
        var info = stat()
        let file = stat(path, &info) == 0 ? "\(info.st_size) bytes, modified \(info.st_mtim.tv_sec)" : "not found"
        return "nvrtc \(version.major).\(version.minor) (\(path), \(file))"
    }

    /// The compiled kernels of this process, by key: `selftest` makes two backends (TF32 and
    /// strict FP32) and compiles once.
    private static let memoLock = HostMutex()
    nonisolated(unsafe) private static var memo: [KernelCache.Key: [UInt8]] = [:]

    /// `CUDAKernelSource.text` compiled for `architecture`: from this process's earlier compile,
    /// else from `cache` on disk, else by NVRTC (and then stored in both). `refresh` skips the
    /// disk (a cached file the runtime would not load is replaced).
    static func kernels(architecture: String, cache: KernelCache, refresh: Bool = false) throws -> (cubin: [UInt8], origin: Origin) {
        let key = KernelCache.Key(source: CUDAKernelSource.text, options: options(architecture: architecture),
                                  architecture: architecture, compiler: try identity())
        memoLock.lock(); defer { memoLock.unlock() }
        if !refresh, let cubin = memo[key] { return (cubin, .process) }
        if !refresh, let cubin = cache.load(key), cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]) {
            memo[key] = cubin
            return (cubin, .disk)
        }
        let cubin = try compile(architecture: architecture)
        memo[key] = cubin
        cache.store(key, cubin)
        return (cubin, .nvrtc)
    }

    /// Forgets this process's compiled kernels (tests: as if a new process started).
    static func forgetCompiled() {
        memoLock.lock(); memo.removeAll(); memoLock.unlock()
    }

    private static func log(_ program: nvrtcProgram?) -> String {
        var size = 0
        guard nvrtcGetProgramLogSize(program, &size) == NVRTC_SUCCESS, size > 1 else { return "" }
        var text = [CChar](repeating: 0, count: size)
        guard nvrtcGetProgramLog(program, &text) == NVRTC_SUCCESS else { return "" }
        return String(cString: text)
    }
}

/// A Swift value a kernel parameter takes, written into its zeroed 8-byte slot of
/// `cudaLaunchKernel` as the C parameter reads it: `Tensor` (or nil) for `float*`, `Int` for
/// `i64`, `Float` for `float`, `UInt64` for `u64`, `Bool` for an `int` flag, a raw device pointer
/// for scratch (`DeviceScratch`, `double*`).
protocol KernelParameter {
    /// The C parameter types this Swift type stands for (checked against the source by a test).
    static var cTypes: Set<String> { get }
    func store(in slot: UnsafeMutableRawPointer)
}

extension Tensor: KernelParameter {
    static var cTypes: Set<String> { ["float*", "const float*"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: rawAddress, as: UnsafeMutableRawPointer?.self) }
}

extension Optional: KernelParameter where Wrapped == Tensor {
    static var cTypes: Set<String> { ["float*", "const float*"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: self?.rawAddress, as: UnsafeMutableRawPointer?.self) }
}

/// Device memory that is not a tensor (the double partials of `sum_partials` and
/// `channel_sums_nhwc`, from the workspace).
struct DeviceScratch: KernelParameter {
    let address: UnsafeMutableRawPointer?
    static var cTypes: Set<String> { ["double*", "const double*"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: address, as: UnsafeMutableRawPointer?.self) }
}

extension Int: KernelParameter {
    static var cTypes: Set<String> { ["i64"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: Int64(self), as: Int64.self) }
}

extension UInt64: KernelParameter {
    static var cTypes: Set<String> { ["u64"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: self, as: UInt64.self) }
}

extension Float: KernelParameter {
    static var cTypes: Set<String> { ["float"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: self, as: Float.self) }
}

extension Bool: KernelParameter {
    static var cTypes: Set<String> { ["int"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: Int32(self ? 1 : 0), as: Int32.self) }
}

/// One NVRTC kernel with its parameter list as Swift types, in the order of its C signature, so
/// that `launch` only compiles with arguments of those types in that order. Declared next to the
/// kernel's C source and its launcher (e.g. `CUDAKernels.add` in CUDAElementwise.swift):
///
/// ```
/// // extern "C" __global__ void add_f32(const float* a, const float* b, float* out, i64 n)
/// static let add = CUDAKernel<Tensor, Tensor, Tensor, Int>(.add_f32)
/// ...
/// launch(CUDAKernels.add, count: n, a, b, out, n)
/// ```
struct CUDAKernel<each Parameter: KernelParameter>: Sendable {
    let name: CUDAKernelSource.Kernel
    init(_ name: CUDAKernelSource.Kernel) { self.name = name }

    /// Per parameter, the C types its Swift type stands for (for the test that compares every
    /// typed kernel with its C signature).
    var parameterCTypes: [Set<String>] {
        var out: [Set<String>] = []
        for type in repeat (each Parameter).self { out.append(type.cTypes) }
        return out
    }
}

/// The typed kernels, declared in the files of their launchers.
enum CUDAKernels {}

extension CUDAKernelSource.Kernel {
    /// The case's position in `allCases` (its declaration order), without building `allCases`:
    /// a payload-free enum is stored as its case index. `testKernelOrdinalsMatchAllCases`
    /// checks this against `allCases` for every kernel.
    @inline(__always)
    var ordinal: Int { Int(unsafeBitCast(self, to: UInt8.self)) }
}

/// The loaded kernels of one device, looked up once by name.
final class CUDAKernelLibrary {
    private var library: cudaLibrary_t?
    /// Indexed by `Kernel.ordinal`.
    private var kernels: [cudaKernel_t?]

    init(cubin: [UInt8]) throws {
        var lib: cudaLibrary_t?
        try cubin.withUnsafeBytes { raw in
            try CUDACalls.cudart("cudaLibraryLoadData") {
                cudaLibraryLoadData(&lib, raw.baseAddress, nil, nil, 0, nil, nil, 0)
            }
        }
        library = lib
        kernels = []
        for kernel in CUDAKernelSource.Kernel.allCases {
            var k: cudaKernel_t?
            try CUDACalls.cudart("cudaLibraryGetKernel(\(kernel.rawValue))") {
                cudaLibraryGetKernel(&k, lib, kernel.rawValue)
            }
            kernels.append(k)
        }
    }

    @inline(__always)
    subscript(_ kernel: CUDAKernelSource.Kernel) -> cudaKernel_t? { kernels[kernel.ordinal] }

    deinit { if let library { cudaLibraryUnload(library) } }
}

extension CUDABackend {
    /// Threads per block of every 1-D launch (`sum_partials` relies on 256).
    static let blockSize = 256
    /// The most argument slots a launch may fill.
    static let maxKernelArguments = 24

    /// Blocks for `count` elements with grid-stride loops: enough to fill the GPU, never zero.
    @inline(__always)
    func blocks(_ count: Int) -> Int {
        max(1, min((count + Self.blockSize - 1) / Self.blockSize, multiprocessors * 32))
    }

    /// Queues `kernel` over `count` elements on the backend's stream; a failure becomes the
    /// sticky error reported by the next `synchronize` or `download`. The arguments go into
    /// slots on the stack: no per-launch allocation, and the call's name is formatted only if
    /// it fails. Their types are the kernel's (`CUDAKernel`), checked by the compiler.
    ///
    /// ```
    /// launch(CUDAKernels.add, count: n, a, b, out, n)
    /// ```
    func launch<each P: KernelParameter>(_ kernel: CUDAKernel<repeat each P>, count: Int, blocks: Int? = nil,
                                         _ arguments: repeat each P) {
        guard count > 0 else { return }
        let grid = blocks ?? self.blocks(count)
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Self.maxKernelArguments) { slots in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: Self.maxKernelArguments) { pointers in
                var n = 0
                for argument in repeat each arguments {
                    precondition(n < Self.maxKernelArguments, "\(kernel.name.rawValue): more than \(Self.maxKernelArguments) arguments")
                    slots[n] = 0
                    argument.store(in: UnsafeMutableRawPointer(slots.baseAddress! + n))
                    n += 1
                }
                for i in 0..<n { pointers[i] = UnsafeMutableRawPointer(slots.baseAddress! + i) }
                let function = UnsafeRawPointer(kernels[kernel.name])
                recordFailure {
                    try queuedCUDART("cudaLaunchKernel(\(kernel.name.rawValue))") {
                        cudaLaunchKernel(function, dim3(x: UInt32(grid), y: 1, z: 1),
                                         dim3(x: UInt32(Self.blockSize), y: 1, z: 1),
                                         pointers.baseAddress, 0, stream)
                    }
                }
            }
        }
    }
}
#endif
