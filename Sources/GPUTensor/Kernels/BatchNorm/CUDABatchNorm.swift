#if CUDA
import CCuda

// Batch norm under `STRATA_CUDA_LAYOUT=nhwc` runs our column-sum kernels (CUDAChannelReductions.swift),
// rank 2 included, unless `STRATA_CUDA_BN=cudnn|persistent`. Otherwise through cuDNN in SPATIAL
// mode (per channel over N, H, W); (N, C) reads as (N, C, 1, 1). Channels-last tensors get NHWC
// descriptors (and NHWC parameter descriptors: (1, C, 1, 1) is the same memory either way, but
// cuDNN then sees one format). Training steps on channels-last tensors run PERSISTENT with
// `STRATA_CUDA_BN=persistent`, as PyTorch does with cuDNN; everything else, inference included, SPATIAL.
extension CUDABackend {
    /// The mode of a training step (forward and backward alike) on `x`.
    func trainingBatchNormMode(_ x: Tensor) -> cudnnBatchNormMode_t {
        batchNormMode == .persistent && isChannelsLast(x) ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT : CUDNN_BATCHNORM_SPATIAL
    }
}

// cuDNN's conventions match the Backend contract: exponentialAverageFactor is PyTorch's momentum,
// the running variance is updated with the unbiased batch variance (this is what PyTorch relies on
// when it hands running_var to cuDNN), and the saved statistics are the mean and 1/sqrt(var + eps)
// with the biased variance. The cross-device check (BatchNormChecks.swift) compares all of it
// with the CPU backend.
extension CUDABackend {
    public func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                         runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         momentum: Float, epsilon: Float) {
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd)
        if usesChannelKernels(x) {
            return channelBatchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                                   runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                                   momentum: momentum, epsilon: epsilon)
        }
        let ch = x.nchw.c
        recordFailure {
            let xd = try descriptor(x), pd = try biasDescriptor(ch, format: cudnnFormat(x))
            var one: Float = 1, zero: Float = 0
            try queuedCUDNN("cudnnBatchNormalizationForwardTraining") {
                cudnnBatchNormalizationForwardTraining(
                    dnn, trainingBatchNormMode(x), &one, &zero, xd.handle, x.rawAddress, xd.handle, y.rawAddress,
                    pd.handle, gamma.rawAddress, beta.rawAddress, Double(momentum),
                    runningMean.rawAddress, runningVar.rawAddress, Double(epsilon),
                    saveMean.rawAddress, saveInvStd.rawAddress)
            }
        }
    }

    public func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                          runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        ShapeChecks.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                              runningVar: runningVar)
        if usesChannelKernels(x) {
            return channelBatchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                                    runningVar: runningVar, epsilon: epsilon)
        }
        let ch = x.nchw.c
        recordFailure {
            let xd = try descriptor(x), pd = try biasDescriptor(ch, format: cudnnFormat(x))
            var one: Float = 1, zero: Float = 0
            try queuedCUDNN("cudnnBatchNormalizationForwardInference") {
                cudnnBatchNormalizationForwardInference(
                    dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.handle, x.rawAddress, xd.handle, y.rawAddress,
                    pd.handle, gamma.rawAddress, beta.rawAddress, runningMean.rawAddress, runningVar.rawAddress,
                    Double(epsilon))
            }
        }
    }

    /// dgamma/dbeta are written or added (`betaParamDiff` 0 or 1); dx is overwritten.
    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor,
                                  saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                  mode: GradMode, epsilon: Float) {
        ShapeChecks.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                      gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta)
        if usesChannelKernels(x) {
            return channelBatchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                            gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode)
        }
        let ch = x.nchw.c
        recordFailure {
            let xd = try descriptor(x), pd = try biasDescriptor(ch, format: cudnnFormat(x))
            var one: Float = 1, zero: Float = 0, paramBeta: Float = mode == .accumulate ? 1 : 0
            // cuDNN uses the saved statistics, but asks for the forward's epsilon in both directions.
            try queuedCUDNN("cudnnBatchNormalizationBackward") {
                cudnnBatchNormalizationBackward(
                    dnn, trainingBatchNormMode(x), &one, &zero, &one, &paramBeta, xd.handle, x.rawAddress,
                    xd.handle, dy.rawAddress, xd.handle, dx.rawAddress, pd.handle, gamma.rawAddress,
                    gradGamma.rawAddress, gradBeta.rawAddress, Double(epsilon), saveMean.rawAddress, saveInvStd.rawAddress)
            }
        }
    }
}

// Batch norm + residual add + ReLU, the end of a basic block: one normalising pass on our
// channels-last kernels; cuDNN's path runs the composition.
extension CUDABackend {
    public func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor,
                                                beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor,
                                                saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        ShapeChecks.batchNormResidual(input: x, residual: residual, output: y, "batchNormAddReLUForwardTraining")
        guard usesChannelKernels(x) else {
            batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                     runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                     momentum: momentum, epsilon: epsilon)
            add(y, residual, output: y)
            return reluForward(y, output: y)
        }
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                             "batchNormAddReLUForwardTraining")
        channelBatchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                        runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                        momentum: momentum, epsilon: epsilon, relu: true, residual: residual)
    }

    public func batchNormAddReLUForwardInference(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor,
                                                 beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        ShapeChecks.batchNormResidual(input: x, residual: residual, output: y, "batchNormAddReLUForwardInference")
        guard usesChannelKernels(x) else {
            batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                      runningVar: runningVar, epsilon: epsilon)
            add(y, residual, output: y)
            return reluForward(y, output: y)
        }
        ShapeChecks.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                              runningVar: runningVar, "batchNormAddReLUForwardInference")
        channelBatchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                         runningVar: runningVar, epsilon: epsilon, relu: true, residual: residual)
    }
}

// Batch norm + ReLU fused: our channels-last kernels apply the ReLU in the normalising pass and
// its mask inside the backward's sums and dx pass; cuDNN's path (NCHW, or `STRATA_CUDA_BN`) runs
// the composition (the contract's default, written out because these methods replace it).
extension CUDABackend {
    public func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                             runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                             momentum: Float, epsilon: Float) {
        guard usesChannelKernels(x) else {
            batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                     runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                     momentum: momentum, epsilon: epsilon)
            return reluForward(y, output: y)
        }
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                             "batchNormReLUForwardTraining")
        channelBatchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                        runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                        momentum: momentum, epsilon: epsilon, relu: true)
    }

    public func batchNormReLUForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                              runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        guard usesChannelKernels(x) else {
            batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                      runningVar: runningVar, epsilon: epsilon)
            return reluForward(y, output: y)
        }
        ShapeChecks.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                              runningVar: runningVar, "batchNormReLUForwardInference")
        channelBatchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                         runningVar: runningVar, epsilon: epsilon, relu: true)
    }

    public func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor,
                                      saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor,
                                      gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        ShapeChecks.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                          saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta)
        guard usesChannelKernels(x) else {
            reluBackward(output: y, gradOutput: dy, gradInput: dy)
            return batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                     gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        }
        channelBatchNormBackward(input: x, reluOutput: y, gradOutput: dy, gamma: gamma, saveMean: saveMean,
                                 saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode)
    }
}
#endif
