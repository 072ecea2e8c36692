#if CUDA
import CCuda

// Batch norm and bias backward on channels-last tensors with our own kernels (the default with
// `STRATA_CUDA_LAYOUT=nhwc`; `STRATA_CUDA_BN=cudnn|persistent` keeps cuDNN's for comparison).
// Why: cuDNN's fp32 NHWC batch norm ran 4-9x slower than its NCHW one on the H200 and ate the
// tensor-core convolutions' gain (PyTorch has its own channels-last kernels for the same reason).
//
// A channels-last tensor (or an (N, C) matrix) is M = N*H*W rows of C contiguous channels, so
// every per-channel statistic is a column sum. `channel_sums_nhwc` splits the rows over many
// blocks (C = 16 with M = 131072 must fill the GPU), each block writing double partials per
// channel into the workspace; a finalize kernel (one block per channel, a fixed-order tree: the
// result does not depend on timing) turns them into the statistics; an elementwise kernel applies
// them. Memory traffic: forward 3 passes (read, read, write), backward 5; no atomics.

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Column sums of (rows, C) row-major data and the batch-norm and bias kernels built on them.
    static let channelReductions = #"""
// ---- Column sums of channels-last data (rows, C), for batch norm and bias backward -------------
// The block's threads: a tile of `width` = min(C, blockDim.x) consecutive channels, repeated over
// `lanes` = blockDim.x / width row lanes, so consecutive threads read consecutive addresses
// (thread t reads row start + t / width, channel tile + t % width). Block b covers channel tile
// b % tiles and row chunk b / tiles of chunks = gridDim.x / tiles.
__device__ __forceinline__ void channel_tiling(i64 c, i64* width, i64* lanes, i64* tiles) {
    *width = c < (i64)blockDim.x ? c : (i64)blockDim.x;
    *lanes = (i64)blockDim.x / *width;
    *tiles = (c + *width - 1) / *width;
}

// partial[(chunk * c + ch) * 2 + 0] = sum of a, [.. + 1] = sum of a * (b - shift[ch]) over the
// chunk's rows; b == 0: the second sum is skipped (bias), shift == 0: no shift (a * b).
// Forward statistics: a = b = x (sums of x and x^2). Backward: a = dy, b = x, shift = mean.
// mask != 0: a is read as `mask > 0 ? a : 0` (ReLU's backward select, from the fused forward's
// output), for the fused batch norm + ReLU backward.
__device__ __forceinline__ void channel_sums_body(const float* a, const float* mask, const float* b, const float* shift,
                                                  i64 rows, i64 c, double* partial) {
    __shared__ double s1[256], s2[256];
    i64 width, lanes, tiles;
    channel_tiling(c, &width, &lanes, &tiles);
    i64 chunks = (i64)gridDim.x / tiles, tile = (i64)blockIdx.x % tiles, chunk = (i64)blockIdx.x / tiles;
    i64 per = (rows + chunks - 1) / chunks, r0 = chunk * per, r1 = r0 + per < rows ? r0 + per : rows;
    i64 t = threadIdx.x, lane = t / width, ch = tile * width + t % width;
    bool active = lane < lanes && ch < c;
    double acc1 = 0.0, acc2 = 0.0;
    if (active) {
        double sh = shift ? (double)shift[ch] : 0.0;
        bool second = b != 0, same = b == a;   // same: the forward's x * x, one load
        i64 r = r0 + lane;
        // Four rows a step: four loads in flight per thread (the H200 needs several to reach its bandwidth).
        for (; r + 3 * lanes < r1; r += 4 * lanes) {
            float va[4], vb[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) va[u] = a[(r + u * lanes) * c + ch];
            if (mask) {
#pragma unroll
                for (int u = 0; u < 4; ++u) va[u] = mask[(r + u * lanes) * c + ch] > 0.0f ? va[u] : 0.0f;
            }
            if (second && !same) {
#pragma unroll
                for (int u = 0; u < 4; ++u) vb[u] = b[(r + u * lanes) * c + ch];
            } else {
#pragma unroll
                for (int u = 0; u < 4; ++u) vb[u] = va[u];
            }
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                acc1 += (double)va[u];
                if (second) acc2 += (double)va[u] * ((double)vb[u] - sh);
            }
        }
        for (; r < r1; r += lanes) {
            float fa = a[r * c + ch];
            if (mask) fa = mask[r * c + ch] > 0.0f ? fa : 0.0f;
            double va = (double)fa;
            acc1 += va;
            if (second) acc2 += va * ((double)b[r * c + ch] - sh);
        }
    }
    s1[t] = acc1; s2[t] = acc2;
    __syncthreads();
    // Fixed-order tree over the lanes (any lane count): lane l adds lane l + h.
    i64 top = 1;
    while (top < lanes) top <<= 1;
    for (i64 h = top >> 1; h > 0; h >>= 1) {
        if (active && lane < h && lane + h < lanes) { s1[t] += s1[t + h * width]; s2[t] += s2[t + h * width]; }
        __syncthreads();
    }
    if (active && lane == 0) {
        partial[(chunk * c + ch) * 2] = s1[t];
        partial[(chunk * c + ch) * 2 + 1] = s2[t];
    }
}

extern "C" __global__ void channel_sums_nhwc(const float* a, const float* b, const float* shift, i64 rows, i64 c,
                                             double* partial) {
    channel_sums_body(a, 0, b, shift, rows, c, partial);
}

// The fused batch norm + ReLU backward's sums: dy masked by the forward's output y (y > 0).
extern "C" __global__ void channel_sums_relu_nhwc(const float* dy, const float* y, const float* x, const float* mean,
                                                  i64 rows, i64 c, double* partial) {
    channel_sums_body(dy, y, x, mean, rows, c, partial);
}

// Adds one channel's `chunks` partials (component k of 2) with the whole block, in a fixed order.
// Every thread of the block gets the total.
__device__ double channel_total(const double* partial, i64 chunks, i64 c, i64 ch, int k, double* s) {
    double acc = 0.0;
    for (i64 j = threadIdx.x; j < chunks; j += blockDim.x) acc += partial[(j * c + ch) * 2 + k];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned h = blockDim.x >> 1; h > 0; h >>= 1) {   // blockDim.x is a power of two
        if (threadIdx.x < h) s[threadIdx.x] += s[threadIdx.x + h];
        __syncthreads();
    }
    double total = s[0];
    __syncthreads();
    return total;
}

// One block per channel (grid-stride over channels). mean = S1/M, biased var = S2/M - mean^2 (in
// double, from exact float products), saveInvStd = 1/sqrt(var + eps); running stats PyTorch's way
// with the unbiased variance var * M / (M - 1).
extern "C" __global__ void batch_norm_statistics(const double* partial, i64 chunks, i64 rows, i64 c, float* saveMean,
                                                 float* saveInvStd, float* runningMean, float* runningVar,
                                                 float momentum, float epsilon) {
    __shared__ double s[256];
    for (i64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum = channel_total(partial, chunks, c, ch, 0, s), squares = channel_total(partial, chunks, c, ch, 1, s);
        if (threadIdx.x == 0) {
            double m = (double)rows, mean = sum / m, var = squares / m - mean * mean;
            if (var < 0.0) var = 0.0;
            double mom = (double)momentum;
            saveMean[ch] = (float)mean;
            saveInvStd[ch] = (float)(1.0 / sqrt(var + (double)epsilon));
            runningMean[ch] = (float)((1.0 - mom) * (double)runningMean[ch] + mom * mean);
            runningVar[ch] = (float)((1.0 - mom) * (double)runningVar[ch] + mom * var * m / (m - 1.0));
        }
    }
}

// The column of element e of a grid-stride loop over (rows, C) data, kept without a division per
// element: it advances by stride % c each step.
#define CHANNEL_GRID_STRIDE(e, ch, n, c)                                                             \
    i64 ch##_step = ((i64)blockDim.x * gridDim.x) % (c);                                              \
    i64 ch = ((i64)blockIdx.x * blockDim.x + threadIdx.x) % (c);                                       \
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < (n);                                  \
         e += (i64)blockDim.x * gridDim.x, ch = ch + ch##_step >= (c) ? ch + ch##_step - (c) : ch + ch##_step)

// y = (x - mean) * invStd * gamma + beta, channel = e % C (training: the batch statistics).
extern "C" __global__ void batch_norm_normalize_nhwc(const float* x, float* y, const float* gamma, const float* beta,
                                                     const float* mean, const float* invStd, i64 total, i64 c) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) y[e] = (x[e] - mean[ch]) * invStd[ch] * gamma[ch] + beta[ch];
}

// The same, then ReLU (`v < 0 ? 0 : v`, as relu_forward: NaN passes), in one pass.
extern "C" __global__ void batch_norm_normalize_relu_nhwc(const float* x, float* y, const float* gamma, const float* beta,
                                                          const float* mean, const float* invStd, i64 total, i64 c) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) {
        float v = (x[e] - mean[ch]) * invStd[ch] * gamma[ch] + beta[ch];
        y[e] = v < 0.0f ? 0.0f : v;
    }
}

// The same plus a residual (a basic block's shortcut, same layout), then ReLU: the end of a block.
extern "C" __global__ void batch_norm_normalize_add_relu_nhwc(const float* x, const float* residual, float* y,
                                                              const float* gamma, const float* beta, const float* mean,
                                                              const float* invStd, i64 total, i64 c) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) {
        float v = (x[e] - mean[ch]) * invStd[ch] * gamma[ch] + beta[ch];
        v = v + residual[e];
        y[e] = v < 0.0f ? 0.0f : v;
    }
}

// Inference: the running statistics, invStd = 1/sqrt(runningVar + eps).
extern "C" __global__ void batch_norm_inference_nhwc(const float* x, float* y, const float* gamma, const float* beta,
                                                     const float* runningMean, const float* runningVar, i64 total,
                                                     i64 c, float epsilon) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) {
        float invStd = 1.0f / sqrtf(runningVar[ch] + epsilon);
        y[e] = (x[e] - runningMean[ch]) * invStd * gamma[ch] + beta[ch];
    }
}

extern "C" __global__ void batch_norm_inference_relu_nhwc(const float* x, float* y, const float* gamma, const float* beta,
                                                          const float* runningMean, const float* runningVar, i64 total,
                                                          i64 c, float epsilon) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) {
        float invStd = 1.0f / sqrtf(runningVar[ch] + epsilon);
        float v = (x[e] - runningMean[ch]) * invStd * gamma[ch] + beta[ch];
        y[e] = v < 0.0f ? 0.0f : v;
    }
}

extern "C" __global__ void batch_norm_inference_add_relu_nhwc(const float* x, const float* residual, float* y,
                                                              const float* gamma, const float* beta,
                                                              const float* runningMean, const float* runningVar,
                                                              i64 total, i64 c, float epsilon) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) {
        float invStd = 1.0f / sqrtf(runningVar[ch] + epsilon);
        float v = (x[e] - runningMean[ch]) * invStd * gamma[ch] + beta[ch];
        v = v + residual[e];
        y[e] = v < 0.0f ? 0.0f : v;
    }
}

// From the partials of (dy, x - mean): dbeta = S1, dgamma = S2 * invStd, written or added
// (accumulate); and per channel for the dx kernel, in coef[3 * ch ..]: gamma * invStd,
// dbeta / M, invStd * dgamma / M (this step's values, whatever accumulate says).
extern "C" __global__ void batch_norm_backward_statistics(const double* partial, i64 chunks, i64 rows, i64 c,
                                                          const float* gamma, const float* invStd, float* gradGamma,
                                                          float* gradBeta, int accumulate, double* coef) {
    __shared__ double s[256];
    for (i64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double dbeta = channel_total(partial, chunks, c, ch, 0, s), dxc = channel_total(partial, chunks, c, ch, 1, s);
        if (threadIdx.x == 0) {
            double is = (double)invStd[ch], dgamma = dxc * is, m = (double)rows;
            gradBeta[ch] = accumulate ? gradBeta[ch] + (float)dbeta : (float)dbeta;
            gradGamma[ch] = accumulate ? gradGamma[ch] + (float)dgamma : (float)dgamma;
            coef[3 * ch] = (double)gamma[ch] * is;
            coef[3 * ch + 1] = dbeta / m;
            coef[3 * ch + 2] = is * dgamma / m;
        }
    }
}

// dx = gamma*invStd * (dy - dbeta/M - xhat*dgamma/M), xhat = (x - mean) * invStd.
extern "C" __global__ void batch_norm_backward_data_nhwc(const float* x, const float* dy, float* dx, const float* mean,
                                                         const double* coef, i64 total, i64 c) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) {
        float k = (float)coef[3 * ch], mb = (float)coef[3 * ch + 1], mg = (float)coef[3 * ch + 2];
        dx[e] = k * (dy[e] - mb - (x[e] - mean[ch]) * mg);
    }
}

// The same with dy masked by the fused forward's output y (`y > 0 ? dy : 0`, relu_backward's select).
extern "C" __global__ void batch_norm_backward_data_relu_nhwc(const float* x, const float* y, const float* dy, float* dx,
                                                              const float* mean, const double* coef, i64 total, i64 c) {
    CHANNEL_GRID_STRIDE(e, ch, total, c) {
        float k = (float)coef[3 * ch], mb = (float)coef[3 * ch + 1], mg = (float)coef[3 * ch + 2];
        float g = y[e] > 0.0f ? dy[e] : 0.0f;
        dx[e] = k * (g - mb - (x[e] - mean[ch]) * mg);
    }
}

// db = (or +=) the column sums of dy.
extern "C" __global__ void bias_backward_statistics(const double* partial, i64 chunks, i64 c, float* db,
                                                    int accumulate) {
    __shared__ double s[256];
    for (i64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum = channel_total(partial, chunks, c, ch, 0, s);
        if (threadIdx.x == 0) db[ch] = accumulate ? db[ch] + (float)sum : (float)sum;
    }
}
"""#
}

extension CUDAKernels {
    /// `channel_sums_nhwc(const float* a, const float* b, const float* shift, i64 rows, i64 c, double* partial)`
    static let channelSums = CUDAKernel<Tensor, Tensor?, Tensor?, Int, Int, DeviceScratch>(.channel_sums_nhwc)
    /// `batch_norm_statistics(const double* partial, i64 chunks, i64 rows, i64 c, float* saveMean,
    /// float* saveInvStd, float* runningMean, float* runningVar, float momentum, float epsilon)`
    static let batchNormStatistics = CUDAKernel<DeviceScratch, Int, Int, Int, Tensor, Tensor, Tensor, Tensor, Float, Float>(
        .batch_norm_statistics)
    /// `batch_norm_normalize_nhwc(const float* x, float* y, const float* gamma, const float* beta,
    /// const float* mean, const float* invStd, i64 total, i64 c)`
    static let batchNormNormalize = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Int, Int>(.batch_norm_normalize_nhwc)
    /// `batch_norm_inference_nhwc(const float* x, float* y, const float* gamma, const float* beta,
    /// const float* runningMean, const float* runningVar, i64 total, i64 c, float epsilon)`
    static let batchNormInference = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Int, Int, Float>(
        .batch_norm_inference_nhwc)
    /// `batch_norm_backward_statistics(const double* partial, i64 chunks, i64 rows, i64 c, const float* gamma,
    /// const float* invStd, float* gradGamma, float* gradBeta, int accumulate, double* coef)`
    static let batchNormBackwardStatistics = CUDAKernel<DeviceScratch, Int, Int, Int, Tensor, Tensor, Tensor, Tensor, Bool,
                                                        DeviceScratch>(.batch_norm_backward_statistics)
    /// `batch_norm_backward_data_nhwc(const float* x, const float* dy, float* dx, const float* mean,
    /// const double* coef, i64 total, i64 c)`
    static let batchNormBackwardData = CUDAKernel<Tensor, Tensor, Tensor, Tensor, DeviceScratch, Int, Int>(
        .batch_norm_backward_data_nhwc)
    /// `channel_sums_relu_nhwc(const float* dy, const float* y, const float* x, const float* mean, i64 rows, i64 c,
    /// double* partial)`
    static let channelSumsReLU = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Int, Int, DeviceScratch>(.channel_sums_relu_nhwc)
    /// `batch_norm_normalize_relu_nhwc(const float* x, float* y, const float* gamma, const float* beta,
    /// const float* mean, const float* invStd, i64 total, i64 c)`
    static let batchNormNormalizeReLU = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Int, Int>(
        .batch_norm_normalize_relu_nhwc)
    /// `batch_norm_inference_relu_nhwc(const float* x, float* y, const float* gamma, const float* beta,
    /// const float* runningMean, const float* runningVar, i64 total, i64 c, float epsilon)`
    static let batchNormInferenceReLU = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Int, Int, Float>(
        .batch_norm_inference_relu_nhwc)
    /// `batch_norm_backward_data_relu_nhwc(const float* x, const float* y, const float* dy, float* dx,
    /// const float* mean, const double* coef, i64 total, i64 c)`
    static let batchNormBackwardDataReLU = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Tensor, DeviceScratch, Int, Int>(
        .batch_norm_backward_data_relu_nhwc)
    /// `batch_norm_normalize_add_relu_nhwc(const float* x, const float* residual, float* y, const float* gamma,
    /// const float* beta, const float* mean, const float* invStd, i64 total, i64 c)`
    static let batchNormNormalizeAddReLU = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Int, Int>(
        .batch_norm_normalize_add_relu_nhwc)
    /// `batch_norm_inference_add_relu_nhwc(const float* x, const float* residual, float* y, const float* gamma,
    /// const float* beta, const float* runningMean, const float* runningVar, i64 total, i64 c, float epsilon)`
    static let batchNormInferenceAddReLU = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Int, Int, Float>(
        .batch_norm_inference_add_relu_nhwc)
    /// `bias_backward_statistics(const double* partial, i64 chunks, i64 c, float* db, int accumulate)`
    static let biasBackwardStatistics = CUDAKernel<DeviceScratch, Int, Int, Tensor, Bool>(.bias_backward_statistics)
}

// MARK: Launchers

/// How `channel_sums_nhwc` splits (rows, C) over blocks of `CUDABackend.blockSize` threads: the
/// kernel's own tiling, and row chunks enough to fill `multiprocessors` (up to 8 blocks of 256
/// threads each, 2048 threads: a full H100/H200 multiprocessor) while each thread still adds at
/// least 16 rows.
struct ChannelSumsGrid: Equatable {
    let tiles: Int
    let chunks: Int
    var blocks: Int { tiles * chunks }

    init(rows: Int, channels c: Int, multiprocessors: Int, blockSize: Int = CUDABackend.blockSize) {
        let width = min(c, blockSize), lanes = blockSize / width
        tiles = (c + width - 1) / width
        let byWork = (rows + lanes * 16 - 1) / (lanes * 16)
        let byDevice = max(1, (multiprocessors * 8) / tiles)
        chunks = max(1, min(byWork, byDevice))
    }
}

extension CUDABackend {
    /// Whether batch norm and bias backward on `t` run our kernels: every tensor under `.nhwc`
    /// (rank 4 channels-last, rank 2 the same with H = W = 1) unless `STRATA_CUDA_BN` asks for cuDNN.
    @inline(__always)
    func usesChannelKernels(_ t: Tensor) -> Bool { layout == .nhwc && batchNormMode == .strata }

    /// Queues the column sums of `a` (and of a * (b - shift)) into the workspace; returns the grid
    /// and the partials, followed by `extraDoubles` free doubles for the caller.
    /// `reluMask`: a is read as `reluMask > 0 ? a : 0` (the fused batch norm + ReLU backward; b
    /// and shift are then x and the mean).
    private func channelSums(_ a: Tensor, _ b: Tensor?, shift: Tensor?, reluMask: Tensor? = nil, extraDoubles: Int = 0) throws
        -> (grid: ChannelSumsGrid, partials: UnsafeMutableRawPointer?, extra: UnsafeMutableRawPointer?) {
        let (n, c, h, w) = a.nchw
        let rows = n * h * w
        let grid = ChannelSumsGrid(rows: rows, channels: c, multiprocessors: multiprocessors)
        let partialBytes = grid.chunks * c * 2 * MemoryLayout<Double>.stride
        let base = try workspace.reserve(partialBytes + extraDoubles * MemoryLayout<Double>.stride)
        if let reluMask, let b, let shift {
            launch(CUDAKernels.channelSumsReLU, count: a.count, blocks: grid.blocks, a, reluMask, b, shift, rows, c,
                   DeviceScratch(address: base))
        } else {
            launch(CUDAKernels.channelSums, count: a.count, blocks: grid.blocks, a, b, shift, rows, c,
                   DeviceScratch(address: base))
        }
        return (grid, base, base.map { $0 + partialBytes })
    }

    /// One block per channel, at most 65535 blocks (grid-stride over the rest).
    private func channelBlocks(_ c: Int) -> Int { max(1, min(c, 65535)) }

    /// `relu`: the fused batch norm + ReLU (the ReLU in the normalising pass); with a `residual`
    /// also, `max(bn(x) + residual, 0)`.
    func channelBatchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                         runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         momentum: Float, epsilon: Float, relu: Bool = false, residual: Tensor? = nil) {
        let c = x.nchw.c, rows = x.count / c
        recordFailure {
            let sums = try channelSums(x, x, shift: nil)
            launch(CUDAKernels.batchNormStatistics, count: c, blocks: channelBlocks(c), DeviceScratch(address: sums.partials),
                   sums.grid.chunks, rows, c, saveMean, saveInvStd, runningMean, runningVar, momentum, epsilon)
            if let residual {
                launch(CUDAKernels.batchNormNormalizeAddReLU, count: x.count, x, residual, y, gamma, beta, saveMean,
                       saveInvStd, x.count, c)
            } else {
                launch(relu ? CUDAKernels.batchNormNormalizeReLU : CUDAKernels.batchNormNormalize, count: x.count,
                       x, y, gamma, beta, saveMean, saveInvStd, x.count, c)
            }
        }
    }

    func channelBatchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                          runningMean: Tensor, runningVar: Tensor, epsilon: Float, relu: Bool = false,
                                          residual: Tensor? = nil) {
        if let residual {
            return launch(CUDAKernels.batchNormInferenceAddReLU, count: x.count, x, residual, y, gamma, beta, runningMean,
                          runningVar, x.count, x.nchw.c, epsilon)
        }
        launch(relu ? CUDAKernels.batchNormInferenceReLU : CUDAKernels.batchNormInference, count: x.count,
               x, y, gamma, beta, runningMean, runningVar, x.count, x.nchw.c, epsilon)
    }

    /// `reluOutput`: the fused forward's output, whose mask (`y > 0`) dy passes through, inside the
    /// sums and the dx pass.
    func channelBatchNormBackward(input x: Tensor, reluOutput: Tensor? = nil, gradOutput dy: Tensor, gamma: Tensor,
                                  saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor,
                                  gradBeta: Tensor, mode: GradMode) {
        let c = x.nchw.c, rows = x.count / c
        recordFailure {
            let sums = try channelSums(dy, x, shift: saveMean, reluMask: reluOutput, extraDoubles: 3 * c)
            let coef = DeviceScratch(address: sums.extra)
            launch(CUDAKernels.batchNormBackwardStatistics, count: c, blocks: channelBlocks(c),
                   DeviceScratch(address: sums.partials), sums.grid.chunks, rows, c, gamma, saveInvStd, gradGamma, gradBeta,
                   mode == .accumulate, coef)
            if let y = reluOutput {
                launch(CUDAKernels.batchNormBackwardDataReLU, count: x.count, x, y, dy, dx, saveMean, coef, x.count, c)
            } else {
                launch(CUDAKernels.batchNormBackwardData, count: x.count, x, dy, dx, saveMean, coef, x.count, c)
            }
        }
    }

    func channelBiasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        let c = dy.nchw.c
        recordFailure {
            let sums = try channelSums(dy, nil, shift: nil)
            launch(CUDAKernels.biasBackwardStatistics, count: c, blocks: channelBlocks(c),
                   DeviceScratch(address: sums.partials), sums.grid.chunks, c, db, mode == .accumulate)
        }
    }
}
#endif
