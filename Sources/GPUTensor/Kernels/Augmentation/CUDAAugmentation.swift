#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Random crop + flip and channel normalisation.
    static let augmentation = #"""
// ---- Augmentation (x, y: (N, C, H, W)) ---------------------------------------------------------
// Crop offsets with the integer form of floor(u * (2p+1)): ((bits >> 8) * (2p+1)) >> 24.
extern "C" __global__ void random_crop_flip(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 padding,
                                            int allowFlip, u64 seed, u64 counter) {
    GRID_STRIDE(e, n * c * h * w) {
        i64 j = e % w, i = (e / w) % h, image = e / (c * h * w);
        u64 span = (u64)(2 * padding + 1);
        i64 oy = (i64)((((u64)(philoxBits(seed, counter, 3 * image) >> 8)) * span) >> 24) - padding;
        i64 ox = (i64)((((u64)(philoxBits(seed, counter, 3 * image + 1) >> 8)) * span) >> 24) - padding;
        bool flip = allowFlip && unitFloat(philoxBits(seed, counter, 3 * image + 2)) < 0.5f;
        i64 si = i + oy, sj = (flip ? w - 1 - j : j) + ox;
        y[e] = (si >= 0 && si < h && sj >= 0 && sj < w) ? x[e - j - i * w + si * w + sj] : 0.0f;
    }
}

// meanStd: C means then C standard deviations.
extern "C" __global__ void normalize_channels(const float* x, float* y, const float* meanStd, i64 total, i64 c,
                                              i64 hw) {
    GRID_STRIDE(e, total) {
        i64 ch = (e / hw) % c;
        y[e] = (x[e] - meanStd[ch]) / meanStd[c + ch];
    }
}

// Channels-last (element ((n * H + i) * W + j) * C + c): the same formula, one thread per physical
// output element.
extern "C" __global__ void random_crop_flip_nhwc(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 padding,
                                                 int allowFlip, u64 seed, u64 counter) {
    GRID_STRIDE(e, n * c * h * w) {
        i64 ch = e % c, j = (e / c) % w, i = (e / (c * w)) % h, image = e / (c * w * h);
        u64 span = (u64)(2 * padding + 1);
        i64 oy = (i64)((((u64)(philoxBits(seed, counter, 3 * image) >> 8)) * span) >> 24) - padding;
        i64 ox = (i64)((((u64)(philoxBits(seed, counter, 3 * image + 1) >> 8)) * span) >> 24) - padding;
        bool flip = allowFlip && unitFloat(philoxBits(seed, counter, 3 * image + 2)) < 0.5f;
        i64 si = i + oy, sj = (flip ? w - 1 - j : j) + ox;
        y[e] = (si >= 0 && si < h && sj >= 0 && sj < w) ? x[((image * h + si) * w + sj) * c + ch] : 0.0f;
    }
}
"""#
}

extension CUDAKernels {
    /// `random_crop_flip(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 padding, int allowFlip, u64 seed, u64 counter)`
    static let randomCropFlip = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Bool, UInt64, UInt64>(.random_crop_flip)

    /// `normalize_channels(const float* x, float* y, const float* meanStd, i64 total, i64 c, i64 hw)`
    static let normalizeChannels = CUDAKernel<Tensor, Tensor, Tensor, Int, Int, Int>(.normalize_channels)

    /// `random_crop_flip_nhwc(const float* x, float* y, i64 n, i64 c, i64 h, i64 w, i64 padding, int allowFlip, u64 seed, u64 counter)`
    static let randomCropFlipNHWC = CUDAKernel<Tensor, Tensor, Int, Int, Int, Int, Int, Bool, UInt64, UInt64>(.random_crop_flip_nhwc)
}

// MARK: Launchers

// Augmentation: channels-last tensors (`isChannelsLast`, CUDALayout.swift) take the `_nhwc` variants.
extension CUDABackend {
    public func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        ShapeChecks.randomCropFlip(x, output: y, padding: padding)
        let (n, c, h, w) = x.nchw
        let kernel = isChannelsLast(x) ? CUDAKernels.randomCropFlipNHWC : CUDAKernels.randomCropFlip
        launch(kernel, count: x.count, x, y, n, c, h, w, padding, allowFlip, seed, counter)
    }

    /// Channels-last (N, C, H, W) is rows of C values, like (N, C): the kernel runs with hw = 1.
    public func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        ShapeChecks.normalizeChannels(x, output: y, mean: mean, std: std)
        precondition(storedAlike(x.shape, y.shape), "normalizeChannels \(x) -> \(y): a channels-last tensor needs its own shape")
        let (_, ch, h, w) = x.nchw
        let hw = isChannelsLast(x) ? 1 : h * w
        recordFailure {
            let meanStd = try scratch(mean + std)   // freed (recycled) after the queued kernel, stream order
            launch(CUDAKernels.normalizeChannels, count: x.count, x, y, meanStd, x.count, ch, hw)
        }
    }
}
#endif
