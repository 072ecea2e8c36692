#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Eight floats from (possibly unaligned) memory, and back. Kernels name their vectors because the
/// compiler cannot prove that the tensors they read and write do not overlap, so a plain loop over
/// pointers stays scalar (the optimizers' loops were: `sqrtss`/`divss` an element).
@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// The lanes' IEEE square roots. `SIMD8<Float>.squareRoot()` lowers to a scalar `sqrtss` (and an
/// errno check calling `sqrtf`) per lane; `sqrtps` gives the same correctly rounded results.
@inline(__always)
func sqrt8(_ v: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(x86_64)
    return SIMD8(lowHalf: _mm_sqrt_ps(v.lowHalf), highHalf: _mm_sqrt_ps(v.highHalf))
    #else
    return v.squareRoot()
    #endif
}
