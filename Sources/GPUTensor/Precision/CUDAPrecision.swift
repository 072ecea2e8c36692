#if CUDA
import CCuda

// Reduced precision (`Precision.bf16`, `.fp16`) on the CUDA backend: convolutions and GEMMs read
// their inputs rounded to the format, on tensor cores, and accumulate in FP32. Tensors stay FP32
// in memory; each call rounds its inputs into scratch (`round_to_bf16` / `round_to_f16`, round to
// nearest even) and gives cuDNN or cuBLAS the 16-bit copies.
//
// cuDNN's legacy convolutions take no mixed types: the "pseudo" configurations
// (PSEUDO_BFLOAT16_CONFIG, PSEUDO_HALF_CONFIG) read x, w and y all in the 16-bit type, with FP32
// compute. So a convolution's result is written in the 16-bit format and widened back to FP32 by
// a second kernel (`widen_bf16` / `widen_f16`, which also adds it to the FP32 gradient for
// backward-filter's accumulate mode): a convolution output is rounded once to the format, as
// PyTorch's autocast convolutions' are. cuBLAS's GemmEx takes 16-bit A and B with an FP32 C and
// FP32 compute, so GEMM results stay FP32 and need no second kernel.

/// The data types one precision gives cuDNN and cuBLAS: a pure function of the precision,
/// host-tested (`CUDAPrecisionTests`).
struct CUDAPrecisionFormats: Equatable {
    /// cuDNN type of the convolution's x, w and y descriptors (the operands in scratch).
    let cudnnData: cudnnDataType_t
    /// cuDNN convolution compute type (the accumulator): FP32 in every precision.
    let cudnnCompute: cudnnDataType_t
    /// cuBLAS type of A and B, of C, and the compute type.
    let blasInput: cudaDataType_t
    let blasOutput: cudaDataType_t
    let blasCompute: cublasComputeType_t
    /// Bytes per element of the operands cuDNN and cuBLAS read (2 for the 16-bit formats).
    let operandBytes: Int
    /// Whether the convolution's result comes back in the 16-bit type and must be widened to FP32.
    let widensConvolutionOutput: Bool

    init(_ precision: Precision) {
        switch precision {
        case .fp32:
            self.init(cudnnData: CUDNN_DATA_FLOAT, blasInput: CUDA_R_32F, operandBytes: 4, widens: false)
        case .bf16:
            self.init(cudnnData: CUDNN_DATA_BFLOAT16, blasInput: CUDA_R_16BF, operandBytes: 2, widens: true)
        case .fp16:
            self.init(cudnnData: CUDNN_DATA_HALF, blasInput: CUDA_R_16F, operandBytes: 2, widens: true)
        }
    }

    private init(cudnnData: cudnnDataType_t, blasInput: cudaDataType_t, operandBytes: Int, widens: Bool) {
        self.cudnnData = cudnnData
        cudnnCompute = CUDNN_DATA_FLOAT
        self.blasInput = blasInput
        blasOutput = CUDA_R_32F
        blasCompute = CUBLAS_COMPUTE_32F
        self.operandBytes = operandBytes
        widensConvolutionOutput = widens
    }

    /// Why `precision` cannot run on a GPU of `computeCapability`, or nil. bf16 needs Ampere
    /// (sm_80): cuDNN and cuBLAS have no bf16 convolutions or GEMMs before it. fp16 runs
    /// everywhere this backend does (tensor cores from sm_70; Pascal computes it without them).
    static func unsupportedReason(_ precision: Precision, computeCapability: (major: Int, minor: Int)) -> String? {
        guard precision == .bf16, computeCapability.major < 8 else { return nil }
        return "--precision bf16 needs compute capability 8.0 (Ampere) or newer; this GPU is "
            + "sm_\(computeCapability.major)\(computeCapability.minor) (fp16 or fp32 run on it)"
    }

    /// The backend name's math part: `TF32`, `strict FP32`, `bf16 tensor cores, FP32 accumulation`.
    static func mathName(_ precision: Precision, strictFP32: Bool) -> String {
        switch precision {
        case .fp32: strictFP32 ? "strict FP32" : "TF32"
        case .bf16, .fp16: "\(precision.rawValue) tensor cores, FP32 accumulation"
        }
    }
}

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// FP32 <-> bf16 / fp16 on bit patterns. Rounding is written out rather than taken from
    /// cuda_bf16.h / cuda_fp16.h: the source includes nothing (NVRTC would need the toolkit's
    /// headers for them), and `cvt.rn.bf16.f32` exists only from sm_80. `ReducedRounding` is the
    /// Swift mirror the host tests compare these with.
    static let reducedPrecision = #"""
// ---- Reduced precision: FP32 <-> bf16 / fp16 (round to nearest, ties to even) -----------------
typedef unsigned short u16;

__device__ __forceinline__ u16 bf16_bits(float f) {
    u32 b = __float_as_uint(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (u16)((b >> 16) | 0x0040u);  // NaN stays a (quiet) NaN
    return (u16)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);                      // carries into the exponent, up to infinity
}

__device__ __forceinline__ u16 f16_bits(float f) {
    u32 b = __float_as_uint(f);
    u32 sign = (b >> 16) & 0x8000u, a = b & 0x7fffffffu;
    if (a > 0x7f800000u) return (u16)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN: quiet, top payload bits
    if (a >= 0x477ff000u) return (u16)(sign | 0x7c00u);                         // >= 65520 (65504 + half an ulp) and infinity
    if (a >= 0x38800000u) {                                                     // normal: >= 2^-14
        u32 m = a - 0x38000000u;                                                // exponent bias 127 -> 15
        return (u16)(sign | ((m + 0xfffu + ((m >> 13) & 1u)) >> 13));
    }
    if (a <= 0x33000000u) return (u16)sign;                                     // <= 2^-25: zero (2^-25 is the tie, to even)
    u32 e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u, shift = 126u - e;      // subnormal, in units of 2^-24
    u32 q = mant >> shift, rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    return (u16)(sign | (q + ((rest > half || (rest == half && (q & 1u))) ? 1u : 0u)));
}

__device__ __forceinline__ float bf16_value(u16 h) { return __uint_as_float((u32)h << 16); }

__device__ __forceinline__ float f16_value(u16 h) {
    u32 sign = (u32)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    if (e == 0u) { float v = (float)m * 5.9604644775390625e-8f; return sign ? -v : v; }  // m * 2^-24, exact
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

extern "C" __global__ void round_to_bf16(const float* x, u16* out, i64 n) {
    GRID_STRIDE(i, n) out[i] = bf16_bits(x[i]);
}

extern "C" __global__ void round_to_f16(const float* x, u16* out, i64 n) {
    GRID_STRIDE(i, n) out[i] = f16_bits(x[i]);
}

// out = x widened, or out + x (a backward-filter gradient accumulated into the FP32 one).
extern "C" __global__ void widen_bf16(const u16* x, float* out, i64 n, int accumulate) {
    GRID_STRIDE(i, n) { float v = bf16_value(x[i]); out[i] = accumulate ? out[i] + v : v; }
}

extern "C" __global__ void widen_f16(const u16* x, float* out, i64 n, int accumulate) {
    GRID_STRIDE(i, n) { float v = f16_value(x[i]); out[i] = accumulate ? out[i] + v : v; }
}
"""#
}

/// Device memory of 16-bit elements (a reduced-precision operand in scratch).
struct HalfBuffer: KernelParameter {
    let address: UnsafeMutableRawPointer?
    static var cTypes: Set<String> { ["u16*", "const u16*"] }
    @inline(__always)
    func store(in slot: UnsafeMutableRawPointer) { slot.storeBytes(of: address, as: UnsafeMutableRawPointer?.self) }
}

extension CUDAKernels {
    /// `round_to_bf16(const float* x, u16* out, i64 n)`
    static let roundToBF16 = CUDAKernel<Tensor, HalfBuffer, Int>(.round_to_bf16)
    /// `round_to_f16(const float* x, u16* out, i64 n)`
    static let roundToF16 = CUDAKernel<Tensor, HalfBuffer, Int>(.round_to_f16)
    /// `widen_bf16(const u16* x, float* out, i64 n, int accumulate)`
    static let widenBF16 = CUDAKernel<HalfBuffer, Tensor, Int, Bool>(.widen_bf16)
    /// `widen_f16(const u16* x, float* out, i64 n, int accumulate)`
    static let widenF16 = CUDAKernel<HalfBuffer, Tensor, Int, Bool>(.widen_f16)
}

/// Scratch for the 16-bit copies of one call's operands: one grown-on-demand buffer per operand
/// position (a convolution has two inputs and an output, a GEMM two inputs). Reused by the next
/// call: the stream orders them.
final class ReducedScratch {
    private let buffers: [DeviceWorkspace]

    init(allocator: CUDAAllocator) {
        buffers = (0..<3).map { _ in DeviceWorkspace(allocator: allocator) }
    }

    func reserve(_ slot: Int, elements: Int, bytesPerElement: Int) throws -> UnsafeMutableRawPointer? {
        try buffers[slot].reserve(max(1, elements) * bytesPerElement)
    }
}

// MARK: Launchers

extension CUDABackend {
    /// `t` rounded to the backend's 16-bit format in scratch slot `slot`; its device address.
    func reducedCopy(_ t: Tensor, slot: Int) throws -> UnsafeMutableRawPointer? {
        precondition(precision != .fp32, "reducedCopy at FP32")
        let out = try reducedScratch.reserve(slot, elements: t.count, bytesPerElement: 2)
        let kernel = precision == .bf16 ? CUDAKernels.roundToBF16 : CUDAKernels.roundToF16
        launch(kernel, count: t.count, t, HalfBuffer(address: out), t.count)
        return out
    }

    /// Scratch slot `slot` sized for `t.count` 16-bit elements (a convolution's result).
    func reducedOutput(for t: Tensor, slot: Int) throws -> UnsafeMutableRawPointer? {
        try reducedScratch.reserve(slot, elements: t.count, bytesPerElement: 2)
    }

    /// `t = widen(scratch)`, or `t += widen(scratch)` when `accumulate`.
    func widen(_ scratch: UnsafeMutableRawPointer?, into t: Tensor, accumulate: Bool) {
        precondition(precision != .fp32, "widen at FP32")
        let kernel = precision == .bf16 ? CUDAKernels.widenBF16 : CUDAKernels.widenF16
        launch(kernel, count: t.count, HalfBuffer(address: scratch), t, t.count, accumulate)
    }
}
#endif
