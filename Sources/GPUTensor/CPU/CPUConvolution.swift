extension CPUBackend {
    public func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        fatalError("not implemented")
    }

    public func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        fatalError("not implemented")
    }

    public func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor, gradWeight dw: Tensor, mode: GradMode) {
        fatalError("not implemented")
    }

    public func addBias(_ y: Tensor, bias: Tensor) {
        fatalError("not implemented")
    }

    public func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        fatalError("not implemented")
    }
}
