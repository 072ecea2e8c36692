#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Philox random fills (uniform, normal), NCHW and channels-last.
    static let random = #"""
// ---- Random fills ------------------------------------------------------------------------------
extern "C" __global__ void fill_uniform(float* x, i64 n, float low, float width, u64 seed, u64 counter) {
    GRID_STRIDE(i, n) x[i] = low + width * unitFloat(philoxBits(seed, counter, i));
}

// Philox.normal: Box-Muller in double on the word pairs (0,1) and (2,3), rounded once.
__device__ __forceinline__ float philox_normal(u64 seed, u64 counter, i64 i) {
    Block4 b = philox(seed, counter, (u64)(i >> 2));
    u32 a = (i & 2) == 0 ? b.w[0] : b.w[2], c = (i & 2) == 0 ? b.w[1] : b.w[3];
    double u1 = ((double)a + 1.0) * (1.0 / 4294967296.0);
    double u2 = (double)c * (1.0 / 4294967296.0);
    double r = sqrt(-2.0 * log(u1));
    double theta = 2.0 * 3.141592653589793 * u2;
    return (float)((i & 1) == 0 ? r * cos(theta) : r * sin(theta));
}

extern "C" __global__ void fill_normal(float* x, i64 n, float mean, float stddev, u64 seed, u64 counter) {
    GRID_STRIDE(i, n) x[i] = mean + stddev * philox_normal(seed, counter, i);
}

// Channels-last (N images of C x HW, stored NHWC): element e draws the value of its logical index,
// so these fill what the NCHW kernels fill, permuted.
extern "C" __global__ void fill_uniform_nhwc(float* x, i64 n, i64 c, i64 hw, float low, float width, u64 seed,
                                             u64 counter) {
    GRID_STRIDE(e, n) x[e] = low + width * unitFloat(philoxBits(seed, counter, logical_of_nhwc(e, c, hw)));
}

extern "C" __global__ void fill_normal_nhwc(float* x, i64 n, i64 c, i64 hw, float mean, float stddev, u64 seed,
                                            u64 counter) {
    GRID_STRIDE(e, n) x[e] = mean + stddev * philox_normal(seed, counter, logical_of_nhwc(e, c, hw));
}
"""#
}

extension CUDAKernels {
    /// `fill_uniform(float* x, i64 n, float low, float width, u64 seed, u64 counter)`
    static let fillUniform = CUDAKernel<Tensor, Int, Float, Float, UInt64, UInt64>(.fill_uniform)

    /// `fill_normal(float* x, i64 n, float mean, float stddev, u64 seed, u64 counter)`
    static let fillNormal = CUDAKernel<Tensor, Int, Float, Float, UInt64, UInt64>(.fill_normal)

    /// `fill_uniform_nhwc(float* x, i64 n, i64 c, i64 hw, float low, float width, u64 seed, u64 counter)`
    static let fillUniformNHWC = CUDAKernel<Tensor, Int, Int, Int, Float, Float, UInt64, UInt64>(.fill_uniform_nhwc)

    /// `fill_normal_nhwc(float* x, i64 n, i64 c, i64 hw, float mean, float stddev, u64 seed, u64 counter)`
    static let fillNormalNHWC = CUDAKernel<Tensor, Int, Int, Int, Float, Float, UInt64, UInt64>(.fill_normal_nhwc)
}

// MARK: Launchers

// Random fills (Philox, same counters as the CPU). Philox by the LOGICAL index: a channels-last
// tensor takes the `_nhwc` kernels.
extension CUDABackend {
    public func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        if isPermuted(x.shape) {
            launch(CUDAKernels.fillUniformNHWC, count: x.count,
                   x, x.count, x.shape[1], x.shape[2] * x.shape[3], low, high - low, seed, counter)
        } else {
            launch(CUDAKernels.fillUniform, count: x.count, x, x.count, low, high - low, seed, counter)
        }
    }

    public func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        if isPermuted(x.shape) {
            launch(CUDAKernels.fillNormalNHWC, count: x.count,
                   x, x.count, x.shape[1], x.shape[2] * x.shape[3], mean, std, seed, counter)
        } else {
            launch(CUDAKernels.fillNormal, count: x.count, x, x.count, mean, std, seed, counter)
        }
    }
}
#endif
