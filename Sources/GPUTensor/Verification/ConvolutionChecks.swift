extension KernelChecks {
    /// GEMM (all transposes), convolution forward / backward-data / backward-filter, bias.
    static var gemmAndConvolution: [KernelCheck] { [] }
}
