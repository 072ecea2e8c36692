/// Optimizer steps that update many parameter tensors in one call. A backend that has them (the
/// CUDA backend: one kernel launch for all of a step's tensors, `MultiTensorTable`) conforms;
/// a caller falls back to the per-tensor `OptimizerKernels` methods otherwise. Each method
/// computes exactly what the per-tensor method computes for each entry, bit for bit.
public protocol MultiTensorOptimizerKernels: AnyObject {
    /// `sgdUpdate` of every entry (`velocity` nil: no momentum for that entry), each with its own
    /// learning rate.
    func sgdUpdateAll(_ entries: [(parameter: Tensor, gradient: Tensor, velocity: Tensor?, learningRate: Float)],
                      momentum: Float, weightDecay wd: Float, nesterov: Bool)
    /// `adamUpdate` of every entry, each with its own learning rate; `step` as in `adamUpdate`.
    func adamUpdateAll(_ entries: [(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor, learningRate: Float)],
                       beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int)
}

#if CUDA
import CCuda
#if canImport(Glibc)
import Glibc
#endif

extension CUDAKernelSource {
    /// Multi-tensor optimizer steps: the per-tensor kernels' element functions
    /// (CUDAOptimizers.swift) over the chunks of a `MultiTensorTable` (its layout is described there).
    static let multiTensor = #"""
// ---- Multi-tensor optimizer steps (MultiTensorTable.swift: pointers, scalars, chunks) ----------
// SGD: pointers p, grad, vel (0: no momentum); scalars lr.
extern "C" __global__ void sgd_multi(const float* tableBits, i64 tensors, i64 chunks, float momentum, float wd,
                                     int nesterov) {
    const i64* table = (const i64*)tableBits;
    const i64* scalars = table + 3 * tensors;
    const i64* chunk = scalars + tensors;
    for (i64 c = blockIdx.x; c < chunks; c += gridDim.x) {
        i64 t = chunk[3 * c], start = chunk[3 * c + 1], count = chunk[3 * c + 2];
        float* p = (float*)table[3 * t];
        const float* grad = (const float*)table[3 * t + 1];
        float* vel = (float*)table[3 * t + 2];
        float lr = __int_as_float((int)scalars[t]);
        for (i64 i = start + threadIdx.x; i < start + count; i += blockDim.x) {
            if (vel) sgd_momentum_element(p, grad, vel, i, lr, momentum, wd, nesterov);
            else sgd_plain_element(p, grad, i, lr, wd);
        }
    }
}

// Adam/AdamW: pointers p, grad, m, v; scalars stepSize, shrink (per tensor: both depend on lr).
extern "C" __global__ void adam_multi(const float* tableBits, i64 tensors, i64 chunks, float beta1, float beta2,
                                      float oneMinusB1, float oneMinusB2, float eps, float invSqrtBc2, float l2) {
    const i64* table = (const i64*)tableBits;
    const i64* scalars = table + 4 * tensors;
    const i64* chunk = scalars + 2 * tensors;
    for (i64 c = blockIdx.x; c < chunks; c += gridDim.x) {
        i64 t = chunk[3 * c], start = chunk[3 * c + 1], count = chunk[3 * c + 2];
        float* p = (float*)table[4 * t];
        const float* grad = (const float*)table[4 * t + 1];
        float* m = (float*)table[4 * t + 2];
        float* v = (float*)table[4 * t + 3];
        float stepSize = __int_as_float((int)scalars[2 * t]);
        float shrink = __int_as_float((int)scalars[2 * t + 1]);
        for (i64 i = start + threadIdx.x; i < start + count; i += blockDim.x)
            adam_element(p, grad, m, v, i, beta1, beta2, oneMinusB1, oneMinusB2, eps, stepSize, invSqrtBc2, l2, shrink);
    }
}
"""#
}

extension CUDAKernels {
    /// `sgd_multi(const float* tableBits, i64 tensors, i64 chunks, float momentum, float wd, int nesterov)`
    static let sgdMulti = CUDAKernel<Tensor, Int, Int, Float, Float, Bool>(.sgd_multi)
    /// `adam_multi(const float* tableBits, i64 tensors, i64 chunks, float beta1, float beta2, float oneMinusB1, float oneMinusB2, float eps, float invSqrtBc2, float l2)`
    static let adamMulti = CUDAKernel<Tensor, Int, Int, Float, Float, Float, Float, Float, Float, Float>(.adam_multi)
}

extension CUDABackend: MultiTensorOptimizerKernels {
    public func sgdUpdateAll(_ entries: [(parameter: Tensor, gradient: Tensor, velocity: Tensor?, learningRate: Float)],
                             momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        let table = MultiTensorTable(entries.map { e in
            let velocity = ShapeChecks.sgdUpdate(parameter: e.parameter, gradient: e.gradient, velocity: e.velocity,
                                                 momentum: momentum)
            return .init(pointers: [e.parameter.deviceWord, e.gradient.deviceWord, velocity?.deviceWord ?? 0],
                         scalars: [e.learningRate], count: e.parameter.count)
        }, pointersPerTensor: 3, scalarsPerTensor: 1)
        launchMulti(CUDAKernels.sgdMulti, table) { words in
            (words, table.tensors, table.chunks.count, momentum, wd, nesterov)
        }
    }

    public func adamUpdateAll(_ entries: [(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor, learningRate: Float)],
                              beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int) {
        // The scalars exactly as adamUpdate derives them (CUDAOptimizers.swift).
        let bc1 = pow(Double(beta1), Double(step)), bc2 = pow(Double(beta2), Double(step))
        let invSqrtBc2 = Float(1 / (1 - bc2).squareRoot())
        let l2: Float = decoupled ? 0 : wd
        let table = MultiTensorTable(entries.map { e in
            ShapeChecks.adamUpdate(parameter: e.parameter, gradient: e.gradient, firstMoment: e.firstMoment,
                                   secondMoment: e.secondMoment, step: step)
            let stepSize = Float(Double(e.learningRate) / (1 - bc1))
            let shrink: Float = decoupled ? 1 - e.learningRate * wd : 1
            return .init(pointers: [e.parameter.deviceWord, e.gradient.deviceWord, e.firstMoment.deviceWord, e.secondMoment.deviceWord],
                         scalars: [stepSize, shrink], count: e.parameter.count)
        }, pointersPerTensor: 4, scalarsPerTensor: 2)
        launchMulti(CUDAKernels.adamMulti, table) { words in
            (words, table.tensors, table.chunks.count, beta1, beta2, 1 - beta1, 1 - beta2, eps, invSqrtBc2, l2)
        }
    }

    /// Uploads `table` (through the staging ring: no wait) and launches `kernel` with one block
    /// per chunk (at most `multiprocessors * 32`, grid-stride over the rest). The table's tensor
    /// goes back to the allocator afterwards; the stream orders its reuse after this launch.
    private func launchMulti<each P: KernelParameter>(_ kernel: CUDAKernel<repeat each P>, _ table: MultiTensorTable,
                                                     arguments: (Tensor) -> (repeat each P)) {
        guard !table.chunks.isEmpty else { return }
        recordFailure {
            let words = try allocate([2 * table.words.count])
            table.words.withUnsafeBytes { raw in
                upload(raw.bindMemory(to: Float.self), to: words)
            }
            let blocks = min(table.chunks.count, multiprocessors * 32)
            let values = arguments(words)
            launch(kernel, count: table.chunks.count, blocks: blocks, repeat each values)
        }
    }
}

extension Tensor {
    /// The device address as a table word.
    var deviceWord: UInt64 { UInt64(UInt(bitPattern: Int(bitPattern: rawAddress))) }
}
#endif
