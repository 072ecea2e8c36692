#if CUDA
/// The CUDA C source of every hand-written kernel, compiled once per process by NVRTC for the
/// device's own architecture (see `CUDAKernelCompiler`). No `#include`: NVRTC provides the device
/// math functions built in, so the source needs nothing from a CUDA toolkit at run time.
///
/// Conventions: one thread per output element with grid-stride loops (`for (i = ...; i < n;
/// i += stride)`), counts as `long long`, every kernel `extern "C"` so its name is its symbol.
/// Compiled with `--fmad=false` so `a + b * c` rounds twice, exactly as the CPU backend's Swift
/// does; that is what lets CPU and GPU agree bit for bit on the random kernels.
///
/// Legend: N batch, C channels, H/W input height/width, OH/OW output height/width, K classes.
/// Kernels that index rank-4 memory come in two variants, NCHW and `_nhwc` (channels-last), chosen
/// by the backend's `layout` (CUDALayout.swift); elementwise kernels need none.
///
/// Each family's kernels live next to their launchers. A new kernel is its C source in its
/// family's string, a typed `CUDAKernel` beside it (`CUDAKernels.name`), a `Kernel` case below
/// (the symbol the library loads), and a row in `testTypedKernelsMatchTheirCSignatures`.
public enum CUDAKernelSource {
    /// The whole program: the shared prelude, then each family's kernels, which live next to
    /// their launchers (CUDAElementwise.swift, CUDALayerKernels.swift, ...).
    public static let text = prelude + elementwise + gemm + layers + batchStatistics + channelReductions + layout
        + multiTensor + reducedPrecision

    /// Types, the grid-stride loop and Philox, shared by every family.
    static let prelude = #"""
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                               i += (i64)blockDim.x * gridDim.x)

// ---- Philox4x32-10: the exact algorithm of Philox.swift ----------------------------------------
struct Block4 { u32 w[4]; };

__device__ __forceinline__ Block4 philox(u64 seed, u64 counter, u64 index) {
    u32 c0 = (u32)index, c1 = (u32)(index >> 32), c2 = (u32)counter, c3 = (u32)(counter >> 32);
    u32 k0 = (u32)seed, k1 = (u32)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        u64 p0 = 0xD2511F53ull * (u64)c0;
        u64 p1 = 0xCD9E8D57ull * (u64)c2;
        u32 hi0 = (u32)(p0 >> 32), lo0 = (u32)p0, hi1 = (u32)(p1 >> 32), lo1 = (u32)p1;
        u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    }
    Block4 b; b.w[0] = c0; b.w[1] = c1; b.w[2] = c2; b.w[3] = c3;
    return b;
}

__device__ __forceinline__ u32 philoxBits(u64 seed, u64 counter, i64 i) {
    return philox(seed, counter, (u64)(i >> 2)).w[i & 3];
}

// Top 24 bits, exact in float32: Philox.unit.
__device__ __forceinline__ float unitFloat(u32 bits) { return (float)(bits >> 8) * (1.0f / 16777216.0f); }

// The logical (NCHW) index of physical element e of a channels-last tensor of c channels and hw
// pixels per image: random kernels draw Philox by the logical index, so both layouts (and the
// CPU) draw the same values.
__device__ __forceinline__ i64 logical_of_nhwc(i64 e, i64 c, i64 hw) {
    i64 ch = e % c, p = (e / c) % hw, image = e / (c * hw);
    return (image * c + ch) * hw + p;
}
"""#

    /// Every `extern "C"` kernel of `text`, loaded by name at start-up.
    enum Kernel: String, CaseIterable {
        case fill_f32, add_f32, scale_f32, axpy_f32, scale_or_zero_f32, multiply_f32
        case relu_forward, relu_backward
        case sum_partials, argmax_rows, softmax_cross_entropy
        case dropout_forward, fill_uniform, fill_normal
        case dropout_forward_nhwc, fill_uniform_nhwc, fill_normal_nhwc
        case sgd_plain, sgd_momentum, rmsprop_update, adam_update
        case random_crop_flip, normalize_channels, shortcut_pad_forward, shortcut_pad_backward
        case maxpool_forward, maxpool_backward, avgpool_forward, avgpool_backward
        case global_avgpool_forward, global_avgpool_backward
        case random_crop_flip_nhwc, shortcut_pad_forward_nhwc, shortcut_pad_backward_nhwc
        case maxpool_forward_nhwc, maxpool_backward_nhwc, avgpool_forward_nhwc, avgpool_backward_nhwc
        case global_avgpool_forward_nhwc, global_avgpool_backward_nhwc
        case sum_to_slot, count_correct_to_slot
        case nchw_to_nhwc, nhwc_to_nchw
        case channel_sums_nhwc, batch_norm_statistics, batch_norm_normalize_nhwc, batch_norm_inference_nhwc
        case batch_norm_backward_statistics, batch_norm_backward_data_nhwc, bias_backward_statistics
        case channel_sums_relu_nhwc, batch_norm_normalize_relu_nhwc, batch_norm_inference_relu_nhwc
        case batch_norm_backward_data_relu_nhwc, batch_norm_normalize_add_relu_nhwc, batch_norm_inference_add_relu_nhwc
        case sgd_multi, adam_multi
        case round_to_bf16, round_to_f16, widen_bf16, widen_f16
    }
}
#endif
