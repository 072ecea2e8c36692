extension CPUBackend {
    public func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        fatalError("not implemented")
    }

    public func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?, learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        fatalError("not implemented")
    }

    public func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor, learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int) {
        fatalError("not implemented")
    }
}
