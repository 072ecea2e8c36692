extension KernelChecks {
    /// Elementwise, reductions, random fills, dropout, optimizer updates, augmentation, shortcut.
    static var utilityKernels: [KernelCheck] { [] }
}
