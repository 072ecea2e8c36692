#if CUDA
/// The CUDA C source of every hand-written kernel, compiled once per process by NVRTC for the
/// device's own architecture (see `CUDAKernels`). No `#include`: NVRTC provides the device
/// math functions built in, so the source needs nothing from a CUDA toolkit at run time.
///
/// Conventions: one thread per output element with grid-stride loops (`for (i = ...; i < n;
/// i += stride)`), counts as `long long`, every kernel `extern "C"` so its name is its symbol.
/// Compiled with `--fmad=false` so `a + b * c` rounds twice, exactly as the CPU backend's Swift
/// does; that is what lets CPU and GPU agree bit for bit on the random kernels.
///
/// Legend: N batch, C channels, H/W input height/width, OH/OW output height/width, K classes.
public enum CUDAKernelSource {
    public static let text = #"""
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

// ---- Elementwise -------------------------------------------------------------------------------
extern "C" __global__ void fill_f32(float* x, i64 n, float value) { GRID_STRIDE(i, n) x[i] = value; }

extern "C" __global__ void add_f32(const float* a, const float* b, float* out, i64 n) {
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

extern "C" __global__ void scale_f32(const float* x, float* out, i64 n, float alpha) {
    GRID_STRIDE(i, n) out[i] = alpha * x[i];
}

extern "C" __global__ void axpy_f32(const float* x, float* y, i64 n, float alpha) {
    GRID_STRIDE(i, n) y[i] = y[i] + alpha * x[i];
}

// out = beta == 0 ? 0 : beta * out (gemm with k = 0).
extern "C" __global__ void scale_or_zero_f32(float* x, i64 n, float beta) {
    GRID_STRIDE(i, n) x[i] = beta == 0.0f ? 0.0f : beta * x[i];
}

extern "C" __global__ void relu_forward(const float* x, float* y, i64 n) {
    GRID_STRIDE(i, n) { float v = x[i]; y[i] = v < 0.0f ? 0.0f : v; }   // NaN passes, as on the CPU
}

extern "C" __global__ void relu_backward(const float* y, const float* dy, float* dx, i64 n) {
    GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

extern "C" __global__ void multiply_f32(const float* a, const float* b, float* out, i64 n) {
    GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

// ---- Reductions --------------------------------------------------------------------------------
// One double partial per block (blockDim.x == 256); the host adds the partials in order.
extern "C" __global__ void sum_partials(const float* x, i64 n, double* partial) {
    __shared__ double s[256];
    double acc = 0.0;
    GRID_STRIDE(i, n) acc += (double)x[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = 128; half > 0; half >>= 1) {
        if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

// x (rows, K) -> out (rows): index of the first maximum, as a float.
extern "C" __global__ void argmax_rows(const float* x, float* out, i64 rows, i64 k) {
    GRID_STRIDE(r, rows) {
        const float* row = x + r * k;
        float best = row[0]; i64 at = 0;
        for (i64 j = 1; j < k; ++j) if (row[j] > best) { best = row[j]; at = j; }
        out[r] = (float)at;
    }
}

// ---- Loss --------------------------------------------------------------------------------------
// One thread per row of logits (N, K). A label that is not a class index gives a NaN loss (the CPU
// backend stops on a precondition; a kernel cannot).
extern "C" __global__ void softmax_cross_entropy(const float* z, const float* labels, float* losses,
                                                 float* grad, i64 rows, i64 k, float gradScale) {
    GRID_STRIDE(r, rows) {
        const float* row = z + r * k;
        float labelValue = labels[r];
        i64 label = (i64)labelValue;
        if (!(labelValue >= 0.0f) || label >= k || (float)label != labelValue) {
            losses[r] = __int_as_float(0x7fc00000);
            continue;
        }
        float mx = row[0];
        for (i64 j = 1; j < k; ++j) if (row[j] > mx) mx = row[j];
        double s = 0.0;
        if (grad) {
            float* g = grad + r * k;
            for (i64 j = 0; j < k; ++j) { float e = expf(row[j] - mx); g[j] = e; s += (double)e; }
            float inv = (float)(1.0 / s);
            for (i64 j = 0; j < k; ++j) g[j] = g[j] * inv * gradScale;
            g[label] -= gradScale;
        } else {
            for (i64 j = 0; j < k; ++j) s += (double)expf(row[j] - mx);
        }
        losses[r] = (float)(log(s) + (double)(mx - row[label]));
    }
}

// ---- Random ------------------------------------------------------------------------------------
extern "C" __global__ void dropout_forward(const float* x, float* y, float* mask, i64 n, float p, float keep,
                                           u64 seed, u64 counter) {
    GRID_STRIDE(i, n) {
        float m = unitFloat(philoxBits(seed, counter, i)) >= p ? keep : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

extern "C" __global__ void fill_uniform(float* x, i64 n, float low, float width, u64 seed, u64 counter) {
    GRID_STRIDE(i, n) x[i] = low + width * unitFloat(philoxBits(seed, counter, i));
}

// Philox.normal: Box-Muller in double on the word pairs (0,1) and (2,3), rounded once.
extern "C" __global__ void fill_normal(float* x, i64 n, float mean, float stddev, u64 seed, u64 counter) {
    GRID_STRIDE(i, n) {
        Block4 b = philox(seed, counter, (u64)(i >> 2));
        u32 a = (i & 2) == 0 ? b.w[0] : b.w[2], c = (i & 2) == 0 ? b.w[1] : b.w[3];
        double u1 = ((double)a + 1.0) * (1.0 / 4294967296.0);
        double u2 = (double)c * (1.0 / 4294967296.0);
        double r = sqrt(-2.0 * log(u1));
        double theta = 2.0 * 3.141592653589793 * u2;
        float z = (float)((i & 1) == 0 ? r * cos(theta) : r * sin(theta));
        x[i] = mean + stddev * z;
    }
}

// ---- Optimizers (PyTorch's rules, as CPUOptimizers.swift) --------------------------------------
extern "C" __global__ void sgd_plain(float* p, const float* grad, i64 n, float lr, float wd) {
    GRID_STRIDE(i, n) p[i] = p[i] - lr * (grad[i] + wd * p[i]);
}

extern "C" __global__ void sgd_momentum(float* p, const float* grad, float* vel, i64 n, float lr, float momentum,
                                        float wd, int nesterov) {
    GRID_STRIDE(i, n) {
        float g = grad[i] + wd * p[i];
        float v = momentum * vel[i] + g;
        vel[i] = v;
        p[i] = p[i] - lr * (nesterov ? g + momentum * v : v);
    }
}

// buf == 0: no momentum.
extern "C" __global__ void rmsprop_update(float* p, const float* grad, float* sq, float* buf, i64 n, float lr,
                                          float alpha, float oneMinusAlpha, float eps, float momentum, float wd) {
    GRID_STRIDE(i, n) {
        float g = grad[i] + wd * p[i];
        float s = alpha * sq[i] + oneMinusAlpha * g * g;
        sq[i] = s;
        float d = g / (sqrtf(s) + eps);
        if (buf) {
            float b = momentum * buf[i] + d;
            buf[i] = b;
            p[i] = p[i] - lr * b;
        } else {
            p[i] = p[i] - lr * d;
        }
    }
}

extern "C" __global__ void adam_update(float* p, const float* grad, float* m, float* v, i64 n, float beta1,
                                       float beta2, float oneMinusB1, float oneMinusB2, float eps, float stepSize,
                                       float invSqrtBc2, float l2, float shrink) {
    GRID_STRIDE(i, n) {
        float param = p[i] * shrink;
        float g = grad[i] + l2 * param;
        float mi = beta1 * m[i] + oneMinusB1 * g;
        float vi = beta2 * v[i] + oneMinusB2 * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = param - stepSize * (mi / (sqrtf(vi) * invSqrtBc2 + eps));
    }
}

// ---- Augmentation and shortcut (x, y: (N, C, H, W)) --------------------------------------------
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

// y (N, Cout, OH, OW) from x (N, Cin, H, W).
extern "C" __global__ void shortcut_forward(const float* x, float* y, i64 n, i64 cin, i64 h, i64 w, i64 cout,
                                            i64 oh, i64 ow, i64 stride, i64 offset) {
    GRID_STRIDE(e, n * cout * oh * ow) {
        i64 j = e % ow, i = (e / ow) % oh, co = (e / (ow * oh)) % cout, image = e / (ow * oh * cout);
        i64 ci = co - offset;
        y[e] = (ci >= 0 && ci < cin) ? x[((image * cin + ci) * h + i * stride) * w + j * stride] : 0.0f;
    }
}

// dx (N, Cin, H, W) from dy (N, Cout, OH, OW).
extern "C" __global__ void shortcut_backward(const float* dy, float* dx, i64 n, i64 cin, i64 h, i64 w, i64 cout,
                                             i64 oh, i64 ow, i64 stride, i64 offset) {
    GRID_STRIDE(e, n * cin * h * w) {
        i64 j = e % w, i = (e / w) % h, ci = (e / (w * h)) % cin, image = e / (w * h * cin);
        bool hit = i % stride == 0 && j % stride == 0;
        dx[e] = hit ? dy[((image * cout + ci + offset) * oh + i / stride) * ow + j / stride] : 0.0f;
    }
}

// ---- Pooling (x (N, C, H, W), y (N, C, OH, OW); planes = N*C) -----------------------------------
// The first maximum of window (oi, oj) in row-major order; NaN wins, as on the CPU.
__device__ __forceinline__ i64 window_argmax(const float* plane, i64 h, i64 w, i64 oi, i64 oj, i64 k, i64 s,
                                             i64 pad, float* bestOut) {
    i64 r0 = max(oi * s - pad, 0ll), r1 = min(oi * s - pad + k, h);
    i64 c0 = max(oj * s - pad, 0ll), c1 = min(oj * s - pad + k, w);
    float best = -__int_as_float(0x7f800000);
    i64 at = r0 * w + c0;
    for (i64 r = r0; r < r1; ++r)
        for (i64 c = c0; c < c1; ++c) {
            float v = plane[r * w + c];
            if (v > best || (v != v && best == best)) { best = v; at = r * w + c; }
        }
    *bestOut = best;
    return at;
}

extern "C" __global__ void maxpool_forward(const float* x, float* y, i64 planes, i64 h, i64 w, i64 oh, i64 ow,
                                           i64 k, i64 s, i64 pad) {
    GRID_STRIDE(e, planes * oh * ow) {
        i64 oj = e % ow, oi = (e / ow) % oh, plane = e / (oh * ow);
        float best;
        window_argmax(x + plane * h * w, h, w, oi, oj, k, s, pad, &best);
        y[e] = best;
    }
}

// Gather form (no atomics, deterministic): dx[r, c] sums dy over the windows whose first maximum is (r, c).
extern "C" __global__ void maxpool_backward(const float* x, const float* dy, float* dx, i64 planes, i64 h, i64 w,
                                            i64 oh, i64 ow, i64 k, i64 s, i64 pad) {
    GRID_STRIDE(e, planes * h * w) {
        i64 c = e % w, r = (e / w) % h, plane = e / (h * w);
        const float* xp = x + plane * h * w;
        // Windows oi with oi*s - pad <= r < oi*s - pad + k.
        i64 oi0 = max((r + pad - k + s) / s, 0ll), oi1 = min((r + pad) / s, oh - 1);
        i64 oj0 = max((c + pad - k + s) / s, 0ll), oj1 = min((c + pad) / s, ow - 1);
        if (r + pad - k + 1 < 0) oi0 = 0;
        if (c + pad - k + 1 < 0) oj0 = 0;
        float acc = 0.0f;
        for (i64 oi = oi0; oi <= oi1; ++oi)
            for (i64 oj = oj0; oj <= oj1; ++oj) {
                float best;
                if (window_argmax(xp, h, w, oi, oj, k, s, pad, &best) == r * w + c)
                    acc += dy[(plane * oh + oi) * ow + oj];
            }
        dx[e] = acc;
    }
}

// Zero padding counted in the divisor (count_include_pad): window^2.
extern "C" __global__ void avgpool_forward(const float* x, float* y, i64 planes, i64 h, i64 w, i64 oh, i64 ow,
                                           i64 k, i64 s, i64 pad, float inv) {
    GRID_STRIDE(e, planes * oh * ow) {
        i64 oj = e % ow, oi = (e / ow) % oh, plane = e / (oh * ow);
        const float* xp = x + plane * h * w;
        i64 r0 = max(oi * s - pad, 0ll), r1 = min(oi * s - pad + k, h);
        i64 c0 = max(oj * s - pad, 0ll), c1 = min(oj * s - pad + k, w);
        float acc = 0.0f;
        for (i64 r = r0; r < r1; ++r) for (i64 c = c0; c < c1; ++c) acc += xp[r * w + c];
        y[e] = acc * inv;
    }
}

extern "C" __global__ void avgpool_backward(const float* dy, float* dx, i64 planes, i64 h, i64 w, i64 oh, i64 ow,
                                            i64 k, i64 s, i64 pad, float inv) {
    GRID_STRIDE(e, planes * h * w) {
        i64 c = e % w, r = (e / w) % h, plane = e / (h * w);
        i64 oi0 = (r + pad - k + 1 <= 0) ? 0 : (r + pad - k + s) / s, oi1 = min((r + pad) / s, oh - 1);
        i64 oj0 = (c + pad - k + 1 <= 0) ? 0 : (c + pad - k + s) / s, oj1 = min((c + pad) / s, ow - 1);
        float acc = 0.0f;
        for (i64 oi = oi0; oi <= oi1; ++oi)
            for (i64 oj = oj0; oj <= oj1; ++oj) acc += dy[(plane * oh + oi) * ow + oj];
        dx[e] = acc * inv;
    }
}

// x (planes, HW) -> y (planes): the mean of each plane, accumulated in double.
extern "C" __global__ void global_avgpool_forward(const float* x, float* y, i64 planes, i64 hw) {
    GRID_STRIDE(p, planes) {
        double acc = 0.0;
        for (i64 k = 0; k < hw; ++k) acc += (double)x[p * hw + k];
        y[p] = (float)(acc / (double)hw);
    }
}

extern "C" __global__ void global_avgpool_backward(const float* dy, float* dx, i64 planes, i64 hw, float inv) {
    GRID_STRIDE(e, planes * hw) dx[e] = dy[e / hw] * inv;
}

// ---- Per-batch statistics kept on the device ---------------------------------------------------
// Launched as ONE block of 256 threads: the result lands in out[slot] without a host round trip.
extern "C" __global__ void sum_to_slot(const float* x, i64 n, float* out, i64 slot) {
    __shared__ double s[256];
    double acc = 0.0;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) acc += (double)x[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = 128; half > 0; half >>= 1) {
        if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[slot] = (float)s[0];
}

// logits (rows, K), labels (rows) -> out[slot] = rows whose first maximum is the label.
extern "C" __global__ void count_correct_to_slot(const float* z, const float* labels, i64 rows, i64 k,
                                                 float* out, i64 slot) {
    __shared__ int s[256];
    int acc = 0;
    for (i64 r = threadIdx.x; r < rows; r += blockDim.x) {
        const float* row = z + r * k;
        float best = row[0]; i64 at = 0;
        for (i64 j = 1; j < k; ++j) if (row[j] > best) { best = row[j]; at = j; }
        if ((float)at == labels[r]) acc += 1;
    }
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = 128; half > 0; half >>= 1) {
        if (threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[slot] = (float)s[0];
}
"""#

    /// Every `extern "C"` kernel of `text`, loaded by name at start-up.
    enum Kernel: String, CaseIterable {
        case fill_f32, add_f32, scale_f32, axpy_f32, scale_or_zero_f32, multiply_f32
        case relu_forward, relu_backward
        case sum_partials, argmax_rows, softmax_cross_entropy
        case dropout_forward, fill_uniform, fill_normal
        case sgd_plain, sgd_momentum, rmsprop_update, adam_update
        case random_crop_flip, normalize_channels, shortcut_forward, shortcut_backward
        case maxpool_forward, maxpool_backward, avgpool_forward, avgpool_backward
        case global_avgpool_forward, global_avgpool_backward
        case sum_to_slot, count_correct_to_slot
    }
}
#endif
