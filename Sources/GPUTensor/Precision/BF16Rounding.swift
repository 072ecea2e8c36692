/// bfloat16 rounding of FP32 values, kept in FP32 storage: what the CPU backend's bf16 GEMMs read,
/// and what the precision checks (Verification/PrecisionChecks.swift) build their reference from.
///
/// Round to nearest, ties to even, on the top 16 bits, as oneDNN's f32 -> bf16 reorders and
/// AVX-512 BF16's `vcvtne2ps2bf16` do; values beyond bf16's largest finite round to infinity,
/// NaN stays NaN (quiet).
@inline(__always)
func bf16Rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    if x.isNaN { return Float(bitPattern: (bits | 0x0040_0000) & 0xFFFF_0000) }
    let tieToEven = (bits >> 16) & 1
    return Float(bitPattern: (bits &+ 0x7FFF &+ tieToEven) & 0xFFFF_0000)
}

extension CPUBackend {
    /// `destination[i] = bf16Rounded(source[i])` for `count` values, over the backend's threads.
    func roundToBF16(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 1 << 15) { range in
            for i in range { destination[i] = bf16Rounded(source[i]) }
        }
    }
}
