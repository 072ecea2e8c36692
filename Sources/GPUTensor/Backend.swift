/// The kernels a CNN trainer needs, implemented once per device (`CPUBackend`, `CUDABackend`).
///
/// Conventions, shared by every implementation so that layers never ask which one they run on:
/// - Tensors are float32 and dense; shapes are logical: images (N, C, H, W), conv weights
///   (O, I, KH, KW). All tensors of a call live on `device`. Shapes are checked with
///   preconditions: a mismatch is a bug in the caller.
/// - Storage order is each backend's own choice: the CPU stores rank-4 tensors channels-last,
///   physical order (dim0, dim2, dim3, dim1); CUDA too by default, or row-major (NCHW) with
///   `STRATA_CUDA_LAYOUT=nchw`. Hence callers never read memory directly: `upload`/`download`
///   take and give logical row-major arrays, `copy` copies in logical order (between shapes too:
///   (N, C, H, W) -> (N, C*H*W) is PyTorch's flatten), and a `reshaped` view of a rank-4 tensor to
///   another shape is wrong (slices of the first dimension are fine). Random kernels index Philox
///   by logical position.
/// - Kernels may run asynchronously; `download` and `synchronize` wait for them. A device
///   failure (launch error, lost GPU) is reported by the next `synchronize` or `download`.
/// - Integer labels and indices are stored in float32 tensors (exact below 2^24).
/// - Random kernels are counter-based (Philox4x32-10, see `Philox`): element `i` of a call with
///   `(seed, counter)` depends only on those three numbers, so the CPU and CUDA agree and a
///   checkpoint only has to store a counter.
/// - Gradients of weights take a `GradMode`; gradients of inputs always overwrite.
public protocol Backend: BackendCore, DenseAlgebraKernels, ConvolutionKernels, ActivationKernels, PoolingKernels,
                         BatchNormKernels, LossKernels, ElementwiseKernels, BatchStatisticsKernels, DropoutKernels,
                         RandomKernels, OptimizerKernels, AugmentationKernels, ShortcutPadKernels {}
// Each family lives in its folder, Kernels/<Family>/: the protocol with its specification and
// shape checks (<Family>.swift), the CPU and CUDA implementations, the float64 references and
// checks (<Family>Checks.swift). A new kernel goes into its family's protocol and into
// `ForwardingBackend` and `BackendCall` (Contract/); a new family also into the list above,
// `KernelChecks.all` and, for its CUDA source, CUDA/CUDAKernelFamilies.swift.

public extension Backend {
    /// A tensor holding `values`.
    func tensor(_ values: [Float], shape: [Int]) throws -> Tensor {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let t = try allocate(shape)
        values.withUnsafeBufferPointer { upload($0, to: t) }
        return t
    }

    func upload(_ values: [Float], to destination: Tensor) {
        precondition(values.count == destination.count, "\(values.count) values for \(destination)")
        values.withUnsafeBufferPointer { upload($0, to: destination) }
    }

    /// The tensor's elements on the host.
    func download(_ source: Tensor) throws -> [Float] {
        var out = [Float](repeating: 0, count: source.count)
        try out.withUnsafeMutableBufferPointer { try download(source, into: $0) }
        return out
    }

    /// He/Kaiming normal init: std = sqrt(2 / fanIn).
    func fillHeNormal(_ x: Tensor, fanIn: Int, seed: UInt64, counter: UInt64) {
        fillNormal(x, mean: 0, std: (2.0 / Float(fanIn)).squareRoot(), seed: seed, counter: counter)
    }
}
