/// The number format a backend computes convolutions and GEMMs in (`--precision`).
///
/// Whatever the precision, weights, optimizer state, batch-norm statistics, the loss and every
/// reduction stay FP32 ("master" copies), and checkpoints are FP32: a reduced precision changes
/// what the convolution and GEMM kernels read (their inputs rounded to the format) and nothing
/// a user saves. Accumulation is FP32 in every format.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// IEEE single precision everywhere (CUDA may still use TF32 tensor cores unless strict).
    case fp32
    /// bfloat16 inputs to convolutions and GEMMs (8-bit exponent: FP32's range, no loss scaling).
    /// CPU: oneDNN's AVX-512 BF16 kernels; CUDA: tensor cores.
    case bf16
    /// IEEE half inputs to convolutions and GEMMs (5-bit exponent: needs dynamic loss scaling).
    /// CUDA only.
    case fp16

    /// Parses `fp32`, `bf16` or `fp16` (also `float32`, `bfloat16`, `float16`, `half`).
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "fp32", "float32", "f32": self = .fp32
        case "bf16", "bfloat16": self = .bf16
        case "fp16", "float16", "f16", "half": self = .fp16
        default: return nil
        }
    }

    /// Bits of significand kept (with the implicit bit): what a reduced-precision result's
    /// tolerance is derived from (unit roundoff 2^-bits).
    public var significandBits: Int {
        switch self {
        case .fp32: return 24
        case .bf16: return 8
        case .fp16: return 11
        }
    }

    /// Unit roundoff of the format: half the distance from 1 to the next representable number.
    public var unitRoundoff: Double { 1 / Double(1 << significandBits) }

    /// Whether training in this format needs dynamic loss scaling (fp16's narrow exponent range).
    public var needsLossScaling: Bool { self == .fp16 }
}
