#if CUDA
import CCuda

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Per-batch statistics kept on the device.
    static let batchStatistics = #"""
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
}

extension CUDAKernels {
    /// `sum_to_slot(const float* x, i64 n, float* out, i64 slot)`
    static let sumToSlot = CUDAKernel<Tensor, Int, Tensor, Int>(.sum_to_slot)
    /// `count_correct_to_slot(const float* z, const float* labels, i64 rows, i64 k, float* out, i64 slot)`
    static let countCorrectToSlot = CUDAKernel<Tensor, Tensor, Int, Int, Tensor, Int>(.count_correct_to_slot)
}

// MARK: Launchers

// Launchers of the per-batch statistics kernels (`sum_to_slot`, `count_correct_to_slot` in
// CUDAKernelSource): each a single block of `blockSize` threads, queued on the stream like any
// other kernel, so the trainer never waits for the GPU until it reads an epoch's slots.
extension CUDABackend {
    public func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        ShapeChecks.slot(out, slot, "sum")
        guard x.count > 0 else { fill(out.slice(slot..<(slot + 1)), value: 0); return }
        launch(CUDAKernels.sumToSlot, count: x.count, blocks: 1, x, x.count, out, slot)
    }

    public func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        ShapeChecks.countCorrect(logits: logits, labels: labels, into: out, slot: slot)
        guard logits.shape[0] > 0 else { fill(out.slice(slot..<(slot + 1)), value: 0); return }
        launch(CUDAKernels.countCorrectToSlot, count: logits.shape[0], blocks: 1,
               logits, labels, logits.shape[0], logits.shape[1], out, slot)
    }
}
#endif
