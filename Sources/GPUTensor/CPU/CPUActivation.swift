extension CPUBackend {
    public func reluForward(_ x: Tensor, output y: Tensor) {
        fatalError("not implemented")
    }

    public func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        fatalError("not implemented")
    }
}
