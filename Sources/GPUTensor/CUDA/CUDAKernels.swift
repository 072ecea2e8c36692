#if CUDA
import CCuda
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

    private static func log(_ program: nvrtcProgram?) -> String {
        var size = 0
        guard nvrtcGetProgramLogSize(program, &size) == NVRTC_SUCCESS, size > 1 else { return "" }
        var text = [CChar](repeating: 0, count: size)
        guard nvrtcGetProgramLog(program, &text) == NVRTC_SUCCESS else { return "" }
        return String(cString: text)
    }
}

/// A kernel argument, stored in an 8-byte slot for `cudaLaunchKernel`.
enum KernelArgument {
    case pointer(UnsafeMutableRawPointer?)
    case int(Int)
    case uint64(UInt64)
    case int32(Int32)
    case float(Float)

    static func tensor(_ t: Tensor) -> KernelArgument { .pointer(t.rawAddress) }
    static func tensor(_ t: Tensor?) -> KernelArgument { .pointer(t?.rawAddress) }

    /// Writes the value into its zeroed 8-byte slot.
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) {
        slot.storeBytes(of: 0, as: UInt64.self)
        switch self {
        case .pointer(let p): slot.storeBytes(of: p, as: UnsafeMutableRawPointer?.self)
        case .int(let v): slot.storeBytes(of: Int64(v), as: Int64.self)
        case .uint64(let v): slot.storeBytes(of: v, as: UInt64.self)
        case .int32(let v): slot.storeBytes(of: v, as: Int32.self)
        case .float(let v): slot.storeBytes(of: v, as: Float.self)
        }
    }
}

/// What `launch` takes as arguments: single values (`KernelValue`, written `.tensor(x)`,
/// `.int(n)`, ...) or a group of them (`KernelArgumentList`, the pooling geometry). Launching
/// with a parameter pack of these allocates nothing.
protocol KernelArguments {
    var argumentCount: Int { get }
    func store(into slots: UnsafeMutablePointer<UInt64>)
}

/// One argument of a parameter-pack launch.
struct KernelValue: KernelArguments {
    let argument: KernelArgument
    var argumentCount: Int { 1 }
    @inline(__always)
    func store(into slots: UnsafeMutablePointer<UInt64>) { argument.store(in: UnsafeMutableRawPointer(slots)) }
}

extension KernelArguments where Self == KernelValue {
    // So that `launch(k, count: n, .tensor(x), .int(n))` reads like `KernelArgument`'s cases.
    static func pointer(_ p: UnsafeMutableRawPointer?) -> KernelValue { KernelValue(argument: .pointer(p)) }
    static func int(_ v: Int) -> KernelValue { KernelValue(argument: .int(v)) }
    static func uint64(_ v: UInt64) -> KernelValue { KernelValue(argument: .uint64(v)) }
    static func int32(_ v: Int32) -> KernelValue { KernelValue(argument: .int32(v)) }
    static func float(_ v: Float) -> KernelValue { KernelValue(argument: .float(v)) }
    static func tensor(_ t: Tensor) -> KernelValue { KernelValue(argument: .pointer(t.rawAddress)) }
    static func tensor(_ t: Tensor?) -> KernelValue { KernelValue(argument: .pointer(t?.rawAddress)) }
}

/// An array of arguments as one element of a launch's pack.
struct KernelArgumentList: KernelArguments {
    let arguments: [KernelArgument]
    var argumentCount: Int { arguments.count }
    func store(into slots: UnsafeMutablePointer<UInt64>) {
        for (i, a) in arguments.enumerated() { a.store(in: UnsafeMutableRawPointer(slots + i)) }
    }
}

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
    /// slots on the stack: no per-launch allocation (unless an array is passed), and the
    /// call's name is formatted only if it fails.
    ///
    /// ```
    /// launch(.add_f32, count: n, .tensor(a), .tensor(b), .tensor(out), .int(n))
    /// ```
    /// (In the pack form a bare literal does not infer: write `.float(Float(0))`, `.int32(Int32(1))`.)
    /// The same with the arguments in an array (`[.tensor(x), .int(n)]`), for lists built in
    /// pieces; the array is an allocation per launch, so hot kernels use the pack form.
    func launch(_ kernel: CUDAKernelSource.Kernel, count: Int, blocks: Int? = nil, _ arguments: [KernelArgument]) {
        launch(kernel, count: count, blocks: blocks, KernelArgumentList(arguments: arguments))
    }

    func launch<each A: KernelArguments>(_ kernel: CUDAKernelSource.Kernel, count: Int, blocks: Int? = nil,
                                         _ arguments: repeat each A) {
        guard count > 0 else { return }
        let grid = blocks ?? self.blocks(count)
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Self.maxKernelArguments) { slots in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: Self.maxKernelArguments) { pointers in
                var n = 0
                for argument in repeat each arguments {
                    let k = argument.argumentCount
                    precondition(n + k <= Self.maxKernelArguments, "\(kernel.rawValue): more than \(Self.maxKernelArguments) arguments")
                    argument.store(into: slots.baseAddress! + n)
                    n += k
                }
                for i in 0..<n { pointers[i] = UnsafeMutableRawPointer(slots.baseAddress! + i) }
                let function = UnsafeRawPointer(kernels[kernel])
                recordFailure {
                    try queuedCUDART("cudaLaunchKernel(\(kernel.rawValue))") {
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
