extension CPUBackend {
    public func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        fatalError("not implemented")
    }

    public func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        fatalError("not implemented")
    }

    public func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        fatalError("not implemented")
    }

    public func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        fatalError("not implemented")
    }

    public func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        fatalError("not implemented")
    }

    public func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        fatalError("not implemented")
    }
}
