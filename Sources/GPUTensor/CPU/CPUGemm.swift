extension CPUBackend {
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        fatalError("not implemented")
    }
}
