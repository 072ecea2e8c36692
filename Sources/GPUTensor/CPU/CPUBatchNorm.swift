extension CPUBackend {
    public func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        fatalError("not implemented")
    }

    public func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        fatalError("not implemented")
    }

    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode) {
        fatalError("not implemented")
    }
}
