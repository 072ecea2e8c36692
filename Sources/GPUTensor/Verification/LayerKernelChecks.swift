extension KernelChecks {
    /// ReLU, pooling, batch norm, softmax cross-entropy.
    static var layerKernels: [KernelCheck] { [] }
}
