extension CPUBackend {
    public func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) {
        fatalError("not implemented")
    }

    public func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        fatalError("not implemented")
    }

    public func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        fatalError("not implemented")
    }

    public func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        fatalError("not implemented")
    }
}
