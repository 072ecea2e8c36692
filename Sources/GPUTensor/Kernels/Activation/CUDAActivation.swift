#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// ReLU forward and backward.
    static let activation = #"""
// ---- Activations -------------------------------------------------------------------------------
extern "C" __global__ void relu_forward(const float* x, float* y, i64 n) {
    GRID_STRIDE(i, n) { float v = x[i]; y[i] = v < 0.0f ? 0.0f : v; }   // NaN passes, as on the CPU
}

extern "C" __global__ void relu_backward(const float* y, const float* dy, float* dx, i64 n) {
    GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
"""#
}

extension CUDAKernels {
    /// `relu_forward(const float* x, float* y, i64 n)`
    static let reluForward = CUDAKernel<Tensor, Tensor, Int>(.relu_forward)

    /// `relu_backward(const float* y, const float* dy, float* dx, i64 n)`
    static let reluBackward = CUDAKernel<Tensor, Tensor, Tensor, Int>(.relu_backward)
}

// MARK: Launchers

// ReLU: launchers for the NVRTC kernels above (same formulas as CPUActivation.swift).
extension CUDABackend {
    public func reluForward(_ x: Tensor, output y: Tensor) {
        ShapeChecks.reluForward(x, output: y)
        launch(CUDAKernels.reluForward, count: x.count, x, y, x.count)
    }

    public func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        launch(CUDAKernels.reluBackward, count: y.count, y, dy, dx, y.count)
    }
}
#endif
