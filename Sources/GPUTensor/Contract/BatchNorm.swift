/// Batch normalisation (per channel over N, H, W; x is (N, C) or (N, C, H, W)).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol BatchNormKernels: AnyObject {
    // MARK: Batch normalisation (per channel over N, H, W; x is (N, C) or (N, C, H, W))

    /// Needs more than one value per channel. Normalises with the batch statistics, saves mean and 1/sqrt(var + eps) (biased variance)
    /// for backward, and updates running stats PyTorch's way:
    /// `running = (1 - momentum) * running + momentum * batch` with the unbiased variance.
    func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                  runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                  momentum: Float, epsilon: Float)
    /// Normalises with the running statistics.
    func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                   runningMean: Tensor, runningVar: Tensor, epsilon: Float)
    /// Backward of the training forward: overwrites dx, and writes or adds dgamma, dbeta per `mode`.
    /// `epsilon` is the forward's (cuDNN asks for the same value in both directions).
    func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                           gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float)
}
