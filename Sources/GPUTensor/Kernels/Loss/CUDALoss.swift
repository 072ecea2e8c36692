#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// The fused softmax cross-entropy.
    static let loss = #"""
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
"""#
}

extension CUDAKernels {
    /// `softmax_cross_entropy(const float* z, const float* labels, float* losses, float* grad, i64 rows, i64 k, float gradScale)`
    static let softmaxCrossEntropy = CUDAKernel<Tensor, Tensor, Tensor, Tensor?, Int, Int, Float>(.softmax_cross_entropy)
}

// MARK: Launchers

// The fused softmax cross-entropy: one thread per row of logits.
extension CUDABackend {
    /// A label that is not a class index gives a NaN loss (the CPU backend stops on a precondition).
    public func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        ShapeChecks.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits)
        let rows = logits.shape[0], k = logits.shape[1]
        launch(CUDAKernels.softmaxCrossEntropy, count: rows, logits, labels, losses, gradLogits, rows, k, gradScale)
    }
}
#endif
