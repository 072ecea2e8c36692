import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The reference backend: oneDNN for convolutions and GEMMs, Swift loops over all cores
/// (on libgomp's thread team, shared with oneDNN: `OpenMPTeam`) for the rest.
/// It computes what `CUDABackend` computes, on machines without a GPU. Rank-4 tensors are
/// stored channels-last (NHWC / OHWI) behind the logical NCHW shapes: see CPULayout.swift.
///
/// Kernels run synchronously on the calling thread (spreading work over `threads` cores), so
/// `synchronize` has nothing to wait for. Buffers are 64-byte aligned host memory.
public final class CPUBackend: Backend, @unchecked Sendable {
    public let device: Device = .cpu
    /// Worker threads used by the Swift loops and oneDNN (the one `--threads` setting).
    public let threads: Int
    /// Reused scratch memory (oneDNN layout copies and the like), grown on demand, never shrunk,
    /// so a steady-state training step allocates nothing.
    let workspace = Workspace()
    /// oneDNN's engine, stream and convolution plans, created on the first convolution.
    lazy var dnnl = DNNLContext(threads: threads)

    /// The format convolutions and GEMMs compute in: `.fp32`, or `.bf16` where the CPU has
    /// AVX-512 BF16 (`BackendFactory.make` refuses the rest with one line).
    public let precision: Precision

    /// `precision` `.fp16` is a programming error here (`BackendFactory.make` refuses it with one
    /// line); `.bf16` on a CPU without AVX-512 BF16 still computes bf16's numbers, on oneDNN's slow
    /// reference kernels, which is why the factory refuses that too.
    public init(threads: Int? = nil, precision: Precision = .fp32) {
        precondition(precision != .fp16, Self.fp16Refusal)
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        self.threads = max(1, threads ?? online)
        self.precision = precision
    }

    /// `cpu (oneDNN AVX-512 BF16, 2 threads)`, with `, bf16` appended in bf16.
    public var name: String {
        "cpu (oneDNN \(DNNLInstructionSet.name), \(threads) thread\(threads == 1 ? "" : "s")\(precision == .fp32 ? "" : ", \(precision.rawValue)"))"
    }

    static let fp16Refusal = "the CPU backend computes in fp32 or bf16; fp16 is a CUDA precision"

    /// Why this CPU cannot compute in `precision` (nil when it can): fp16 never, bf16 only with
    /// AVX-512 BF16 (`hasBF16`; without it oneDNN's bf16 convolutions are its reference loops).
    static func refusal(_ precision: Precision, hasBF16: Bool = DNNLInstructionSet.hasBF16) -> String? {
        switch precision {
        case .fp32: return nil
        case .fp16: return fp16Refusal
        case .bf16:
            return hasBF16 ? nil
                : "bf16 needs a CPU with AVX-512 BF16 and oneDNN uses \(DNNLInstructionSet.name) here; use --precision fp32"
        }
    }

    /// Whether this CPU computes bf16 on oneDNN's AVX-512 BF16 kernels (what selftest asks).
    public static var supportsBF16: Bool { DNNLInstructionSet.hasBF16 }

    // MARK: Memory

    public func allocate(_ shape: [Int]) throws -> Tensor {
        let count = shape.reduce(1, *)
        let bytes = max(1, count) * MemoryLayout<Float>.stride
        let base = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        base.initializeMemory(as: Float.self, repeating: 0, count: max(1, count))
        let storage = Storage(device: .cpu, count: count, base: base, release: { $0.deallocate() })
        return Tensor(storage: storage, shape: shape)
    }

    /// `source` is logical row-major; rank-4 tensors are stored channels-last (CPULayout.swift).
    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor) {
        ShapeChecks.upload(source.count, to: destination)
        guard let src = source.baseAddress else { return }
        storeLogical(src, into: destination.hostPointer, shape: destination.shape)
    }

    /// Writes logical row-major values (rank-4 tensors are converted from channels-last).
    public func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws {
        ShapeChecks.download(source, into: destination.count)
        guard let dst = destination.baseAddress else { return }
        loadLogical(source.hostPointer, into: dst, shape: source.shape)
    }

    /// Copies in logical order: a plain copy between tensors stored alike, a permutation between
    /// a channels-last rank-4 tensor and another shape (Flatten's (N, C, H, W) -> (N, C*H*W)).
    public func copy(_ source: Tensor, to destination: Tensor) {
        ShapeChecks.copy(source, to: destination)
        let sp = source.hostPointer, dp = destination.hostPointer
        let sourcePermuted = Self.isChannelsLast(source.shape), destinationPermuted = Self.isChannelsLast(destination.shape)
        if !sourcePermuted && !destinationPermuted || source.shape == destination.shape {
            dp.update(from: sp, count: source.count)
        } else if !destinationPermuted {
            loadLogical(sp, into: dp, shape: source.shape)
        } else if !sourcePermuted {
            storeLogical(sp, into: dp, shape: destination.shape)
        } else {
            // Two channels-last shapes of one count: through logical order in scratch.
            let scratch = workspace.buffer(slot: copyScratchSlot, count: source.count)
            loadLogical(sp, into: scratch, shape: source.shape)
            storeLogical(scratch, into: dp, shape: destination.shape)
        }
    }

    public func synchronize() throws {}

    // MARK: Threading

    /// Splits `0..<count` into at most `threads` contiguous ranges of at least `grain` items and
    /// runs `body` on each in parallel. Small work runs inline on the caller.
    @inline(__always)
    func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / max(1, grain)))
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        OpenMPTeam.run(parts: parts) { p in
            let lo = count * p / parts, hi = count * (p + 1) / parts
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// Workspace slot of `copy`'s logical-order scratch.
private let copyScratchSlot = 0xC0_01

/// Per-thread scratch buffers keyed by slot, grown on demand and kept for reuse.
final class Workspace: @unchecked Sendable {
    private var buffers: [Int: (UnsafeMutablePointer<Float>, Int)] = [:]
    private let lock = HostMutex()

    /// A buffer of at least `count` floats for `slot` (use one slot per concurrent user).
    /// Contents are unspecified.
    func buffer(slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        lock.lock(); defer { lock.unlock() }
        if let (p, n) = buffers[slot], n >= count { return p }
        if let (p, _) = buffers[slot] { p.deallocate() }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        let p = raw.bindMemory(to: Float.self, capacity: max(1, count))
        buffers[slot] = (p, count)
        return p
    }

    deinit { for (p, _) in buffers.values { p.deallocate() } }
}

/// A pthread mutex, so GPUTensor does not need Foundation.
final class HostMutex: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    deinit { pthread_mutex_destroy(mutex); mutex.deallocate() }
    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
}
