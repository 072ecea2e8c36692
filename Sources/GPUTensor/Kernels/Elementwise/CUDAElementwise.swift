#if CUDA
import CCuda
#if canImport(Glibc)
import Glibc
#endif

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Elementwise, reductions, loss, random fills and optimizer updates.
    static let elementwise = #"""
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

extern "C" __global__ void fill_uniform_nhwc(float* x, i64 n, i64 c, i64 hw, float low, float width, u64 seed,
                                             u64 counter) {
    GRID_STRIDE(e, n) x[e] = low + width * unitFloat(philoxBits(seed, counter, logical_of_nhwc(e, c, hw)));
}

extern "C" __global__ void fill_normal_nhwc(float* x, i64 n, i64 c, i64 hw, float mean, float stddev, u64 seed,
                                            u64 counter) {
    GRID_STRIDE(e, n) x[e] = mean + stddev * philox_normal(seed, counter, logical_of_nhwc(e, c, hw));
}

// ---- Optimizers (PyTorch's rules, as CPUOptimizers.swift) --------------------------------------
// Element i of one update; shared with the multi-tensor kernels (CUDAMultiTensor.swift).
__device__ __forceinline__ void sgd_plain_element(float* p, const float* grad, i64 i, float lr, float wd) {
    p[i] = p[i] - lr * (grad[i] + wd * p[i]);
}

__device__ __forceinline__ void sgd_momentum_element(float* p, const float* grad, float* vel, i64 i, float lr,
                                                     float momentum, float wd, int nesterov) {
    float g = grad[i] + wd * p[i];
    float v = momentum * vel[i] + g;
    vel[i] = v;
    p[i] = p[i] - lr * (nesterov ? g + momentum * v : v);
}

__device__ __forceinline__ void adam_element(float* p, const float* grad, float* m, float* v, i64 i, float beta1,
                                             float beta2, float oneMinusB1, float oneMinusB2, float eps,
                                             float stepSize, float invSqrtBc2, float l2, float shrink) {
    float param = p[i] * shrink;
    float g = grad[i] + l2 * param;
    float mi = beta1 * m[i] + oneMinusB1 * g;
    float vi = beta2 * v[i] + oneMinusB2 * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] = param - stepSize * (mi / (sqrtf(vi) * invSqrtBc2 + eps));
}

extern "C" __global__ void sgd_plain(float* p, const float* grad, i64 n, float lr, float wd) {
    GRID_STRIDE(i, n) sgd_plain_element(p, grad, i, lr, wd);
}

extern "C" __global__ void sgd_momentum(float* p, const float* grad, float* vel, i64 n, float lr, float momentum,
                                        float wd, int nesterov) {
    GRID_STRIDE(i, n) sgd_momentum_element(p, grad, vel, i, lr, momentum, wd, nesterov);
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
    GRID_STRIDE(i, n) adam_element(p, grad, m, v, i, beta1, beta2, oneMinusB1, oneMinusB2, eps, stepSize, invSqrtBc2, l2, shrink);
}
"""#
}

extension CUDAKernels {
    /// `fill_f32(float* x, i64 n, float value)`
    static let fill = CUDAKernel<Tensor, Int, Float>(.fill_f32)
    /// `add_f32(const float* a, const float* b, float* out, i64 n)`
    static let add = CUDAKernel<Tensor, Tensor, Tensor, Int>(.add_f32)
    /// `scale_f32(const float* x, float* out, i64 n, float alpha)`
    static let scale = CUDAKernel<Tensor, Tensor, Int, Float>(.scale_f32)
    /// `axpy_f32(const float* x, float* y, i64 n, float alpha)`
    static let axpy = CUDAKernel<Tensor, Tensor, Int, Float>(.axpy_f32)
    /// `relu_forward(const float* x, float* y, i64 n)`
    static let reluForward = CUDAKernel<Tensor, Tensor, Int>(.relu_forward)
    /// `relu_backward(const float* y, const float* dy, float* dx, i64 n)`
    static let reluBackward = CUDAKernel<Tensor, Tensor, Tensor, Int>(.relu_backward)
    /// `multiply_f32(const float* a, const float* b, float* out, i64 n)`
    static let multiply = CUDAKernel<Tensor, Tensor, Tensor, Int>(.multiply_f32)
    /// `sum_partials(const float* x, i64 n, double* partial)`
    static let sumPartials = CUDAKernel<Tensor, Int, DeviceScratch>(.sum_partials)
    /// `argmax_rows(const float* x, float* out, i64 rows, i64 k)`
    static let argmaxRows = CUDAKernel<Tensor, Tensor, Int, Int>(.argmax_rows)
    /// `softmax_cross_entropy(const float* z, const float* labels, float* losses, float* grad, i64 rows, i64 k, float gradScale)`
    static let softmaxCrossEntropy = CUDAKernel<Tensor, Tensor, Tensor, Tensor?, Int, Int, Float>(.softmax_cross_entropy)
    /// `dropout_forward(const float* x, float* y, float* mask, i64 n, float p, float keep, u64 seed, u64 counter)`
    static let dropoutForward = CUDAKernel<Tensor, Tensor, Tensor, Int, Float, Float, UInt64, UInt64>(.dropout_forward)
    /// `fill_uniform(float* x, i64 n, float low, float width, u64 seed, u64 counter)`
    static let fillUniform = CUDAKernel<Tensor, Int, Float, Float, UInt64, UInt64>(.fill_uniform)
    /// `fill_normal(float* x, i64 n, float mean, float stddev, u64 seed, u64 counter)`
    static let fillNormal = CUDAKernel<Tensor, Int, Float, Float, UInt64, UInt64>(.fill_normal)
    /// `dropout_forward_nhwc(const float* x, float* y, float* mask, i64 n, i64 c, i64 hw, float p, float keep, u64 seed, u64 counter)`
    static let dropoutForwardNHWC = CUDAKernel<Tensor, Tensor, Tensor, Int, Int, Int, Float, Float, UInt64, UInt64>(.dropout_forward_nhwc)
    /// `fill_uniform_nhwc(float* x, i64 n, i64 c, i64 hw, float low, float width, u64 seed, u64 counter)`
    static let fillUniformNHWC = CUDAKernel<Tensor, Int, Int, Int, Float, Float, UInt64, UInt64>(.fill_uniform_nhwc)
    /// `fill_normal_nhwc(float* x, i64 n, i64 c, i64 hw, float mean, float stddev, u64 seed, u64 counter)`
    static let fillNormalNHWC = CUDAKernel<Tensor, Int, Int, Int, Float, Float, UInt64, UInt64>(.fill_normal_nhwc)
    /// `sgd_plain(float* p, const float* grad, i64 n, float lr, float wd)`
    static let sgdPlain = CUDAKernel<Tensor, Tensor, Int, Float, Float>(.sgd_plain)
    /// `sgd_momentum(float* p, const float* grad, float* vel, i64 n, float lr, float momentum, float wd, int nesterov)`
    static let sgdMomentum = CUDAKernel<Tensor, Tensor, Tensor, Int, Float, Float, Float, Bool>(.sgd_momentum)
    /// `rmsprop_update(float* p, const float* grad, float* sq, float* buf, i64 n, float lr, float alpha, float oneMinusAlpha, float eps, float momentum, float wd)`
    static let rmspropUpdate = CUDAKernel<Tensor, Tensor, Tensor, Tensor?, Int, Float, Float, Float, Float, Float, Float>(.rmsprop_update)
    /// `adam_update(float* p, const float* grad, float* m, float* v, i64 n, float beta1, float beta2, float oneMinusB1, float oneMinusB2, float eps, float stepSize, float invSqrtBc2, float l2, float shrink)`
    static let adamUpdate = CUDAKernel<Tensor, Tensor, Tensor, Tensor, Int, Float, Float, Float, Float, Float, Float, Float, Float, Float>(.adam_update)
}

// MARK: Launchers

// Elementwise, reductions, activations, loss, random kernels and optimizer updates: launchers
// for the NVRTC kernels of CUDAKernelSource (same formulas as the CPU backend, see there).
extension CUDABackend {
    public func fill(_ x: Tensor, value: Float) {
        launch(CUDAKernels.fill, count: x.count, x, x.count, value)
    }

    public func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        ShapeChecks.add(a, b, output: out)
        launch(CUDAKernels.add, count: a.count, a, b, out, a.count)
    }

    public func scale(_ x: Tensor, by alpha: Float, output out: Tensor) {
        ShapeChecks.scale(x, output: out)
        launch(CUDAKernels.scale, count: x.count, x, out, x.count, alpha)
    }

    public func axpy(alpha: Float, x: Tensor, y: Tensor) {
        ShapeChecks.axpy(x: x, y: y)
        launch(CUDAKernels.axpy, count: x.count, x, y, x.count, alpha)
    }

    /// Block partials in double on the device, added in order on the host.
    public func sum(_ x: Tensor) throws -> Float {
        let n = x.count
        guard n > 0 else { try synchronize(); return 0 }
        let parts = min(blocks(n), 1024)
        let partials = try workspace.reserve(parts * MemoryLayout<Double>.stride)
        launch(CUDAKernels.sumPartials, count: n, blocks: parts, x, n, DeviceScratch(address: partials))
        var host = [Double](repeating: 0, count: parts)
        try synchronize()
        try host.withUnsafeMutableBytes { raw in
            try CUDACalls.cudart("cudaMemcpy(sum partials)") {
                cudaMemcpy(raw.baseAddress, partials, parts * MemoryLayout<Double>.stride, cudaMemcpyDeviceToHost)
            }
        }
        return Float(host.reduce(0, +))
    }

    public func argmax(rows x: Tensor, output out: Tensor) {
        ShapeChecks.argmax(rows: x, output: out)
        launch(CUDAKernels.argmaxRows, count: x.shape[0], x, out, x.shape[0], x.shape[1])
    }

    public func reluForward(_ x: Tensor, output y: Tensor) {
        ShapeChecks.reluForward(x, output: y)
        launch(CUDAKernels.reluForward, count: x.count, x, y, x.count)
    }

    public func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        launch(CUDAKernels.reluBackward, count: y.count, y, dy, dx, y.count)
    }

    /// A label that is not a class index gives a NaN loss (the CPU backend stops on a precondition).
    public func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        ShapeChecks.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits)
        let rows = logits.shape[0], k = logits.shape[1]
        launch(CUDAKernels.softmaxCrossEntropy, count: rows, logits, labels, losses, gradLogits, rows, k, gradScale)
    }

    // MARK: Random (Philox, same counters as the CPU)

    // Philox by the LOGICAL index: a channels-last tensor takes the `_nhwc` kernels.

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

    // MARK: Optimizers (scalars derived on the host exactly as CPUOptimizers.swift does)

    public func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float,
                          momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        guard let velocity = ShapeChecks.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, momentum: momentum) else {
            launch(CUDAKernels.sgdPlain, count: p.count, p, grad, p.count, lr, wd)
            return
        }
        launch(CUDAKernels.sgdMomentum, count: p.count, p, grad, velocity, p.count, lr, momentum, wd, nesterov)
    }

    public func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                              learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        let buffer = ShapeChecks.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf,
                                               momentum: momentum)
        launch(CUDAKernels.rmspropUpdate, count: p.count,
               p, grad, sq, buffer, p.count, lr, alpha, 1 - alpha, eps, momentum, wd)
    }

    public func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                           learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float,
                           weightDecay wd: Float, decoupled: Bool, step: Int) {
        ShapeChecks.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, step: step)
        let bc1 = pow(Double(beta1), Double(step)), bc2 = pow(Double(beta2), Double(step))
        let stepSize = Float(Double(lr) / (1 - bc1))
        let invSqrtBc2 = Float(1 / (1 - bc2).squareRoot())
        let l2: Float = decoupled ? 0 : wd
        let shrink: Float = decoupled ? 1 - lr * wd : 1
        launch(CUDAKernels.adamUpdate, count: p.count,
               p, grad, m, v, p.count, beta1, beta2, 1 - beta1, 1 - beta2, eps, stepSize, invSqrtBc2, l2, shrink)
    }
}
#endif
