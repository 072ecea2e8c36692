#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Dropout's forward (its backward is `multiply_f32`, Elementwise/CUDAElementwise.swift).
    static let dropout = #"""
// ---- Dropout -----------------------------------------------------------------------------------
extern "C" __global__ void dropout_forward(const float* x, float* y, float* mask, i64 n, float p, float keep,
                                           u64 seed, u64 counter) {
    GRID_STRIDE(i, n) {
        float m = unitFloat(philoxBits(seed, counter, i)) >= p ? keep : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

// Channels-last variants (x, y, mask: N images of C x HW, stored NHWC): element e draws the
// value of its logical index, so they fill what the NCHW kernels fill, permuted.
extern "C" __global__ void dropout_forward_nhwc(const float* x, float* y, float* mask, i64 n, i64 c, i64 hw, float p,
                                                float keep, u64 seed, u64 counter) {
    GRID_STRIDE(e, n) {
        float m = unitFloat(philoxBits(seed, counter, logical_of_nhwc(e, c, hw))) >= p ? keep : 0.0f;
        mask[e] = m;
        y[e] = x[e] * m;
    }
}
"""#
}

extension CUDAKernels {
    /// `dropout_forward(const float* x, float* y, float* mask, i64 n, float p, float keep, u64 seed, u64 counter)`
    static let dropoutForward = CUDAKernel<Tensor, Tensor, Tensor, Int, Float, Float, UInt64, UInt64>(.dropout_forward)

    /// `dropout_forward_nhwc(const float* x, float* y, float* mask, i64 n, i64 c, i64 hw, float p, float keep, u64 seed, u64 counter)`
    static let dropoutForwardNHWC = CUDAKernel<Tensor, Tensor, Tensor, Int, Int, Int, Float, Float, UInt64, UInt64>(.dropout_forward_nhwc)
}

// MARK: Launchers

// Dropout on the Philox stream the CPU draws (same counters); Philox by the LOGICAL index: a
// channels-last tensor takes the `_nhwc` kernel.
extension CUDABackend {
    public func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) {
        ShapeChecks.dropoutForward(x, output: y, mask: mask, probability: p)
        precondition(storedAlike(x.shape, y.shape) && storedAlike(x.shape, mask.shape),
                     "dropoutForward \(x) -> \(y), mask \(mask): a channels-last tensor needs its own shape")
        let keep: Float = 1 / (1 - p)
        if isPermuted(x.shape) {
            launch(CUDAKernels.dropoutForwardNHWC, count: x.count,
                   x, y, mask, x.count, x.shape[1], x.shape[2] * x.shape[3], p, keep, seed, counter)
        } else {
            launch(CUDAKernels.dropoutForward, count: x.count, x, y, mask, x.count, p, keep, seed, counter)
        }
    }

    public func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        ShapeChecks.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx)
        launch(CUDAKernels.multiply, count: dy.count, dy, mask, dx, dy.count)
    }
}
#endif
