#if CUDA
/// The kernel families' NVRTC sources, each in its family's folder (Kernels/<Family>/CUDA*.swift).
/// `CUDAKernelSource.text` names `elementwise`, `gemm`, `batchStatistics`, `channelReductions`,
/// `layout` and `multiTensor` itself and takes every other family through `layers`; a new family's
/// source is added here (and its symbols to `CUDAKernelSource.Kernel`).
extension CUDAKernelSource {
    static let layers = activation + loss + dropout + random + optimizers + augmentation + shortcutPad + pooling
}
#endif
