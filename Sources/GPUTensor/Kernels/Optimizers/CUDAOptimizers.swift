#if CUDA
import CCuda
#if canImport(Glibc)
import Glibc
#endif

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Optimizer updates, one tensor per launch (the multi-tensor kernels, CUDAMultiTensor.swift,
    /// share their element functions).
    static let optimizers = #"""
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

// Optimizer updates: scalars derived on the host exactly as CPUOptimizers.swift does.
extension CUDABackend {
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
