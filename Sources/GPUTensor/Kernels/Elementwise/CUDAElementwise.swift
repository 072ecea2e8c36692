#if CUDA
import CCuda
#if canImport(Glibc)
import Glibc
#endif

// MARK: Kernels (NVRTC source, part of `CUDAKernelSource.text`) and their typed signatures

extension CUDAKernelSource {
    /// Elementwise kernels and the reductions behind `sum` and `argmax`.
    static let elementwise = #"""
// ---- Elementwise and reductions ----------------------------------------------------------------
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

extern "C" __global__ void multiply_f32(const float* a, const float* b, float* out, i64 n) {
    GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

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

    /// `multiply_f32(const float* a, const float* b, float* out, i64 n)`
    static let multiply = CUDAKernel<Tensor, Tensor, Tensor, Int>(.multiply_f32)

    /// `sum_partials(const float* x, i64 n, double* partial)`
    static let sumPartials = CUDAKernel<Tensor, Int, DeviceScratch>(.sum_partials)

    /// `argmax_rows(const float* x, float* out, i64 rows, i64 k)`
    static let argmaxRows = CUDAKernel<Tensor, Tensor, Int, Int>(.argmax_rows)
}

// MARK: Launchers

// Elementwise kernels and reductions: launchers for the NVRTC kernels above (same formulas as
// CPUElementwise.swift).
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
}
#endif
