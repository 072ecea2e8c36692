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

    // MARK: Batch norm + ReLU, fused (a ResNet's or VGG's conv -> BN -> ReLU)
    //
    // The same results as the unfused composition (a backend without fused kernels gets the
    // defaults below, which ARE that composition); a fused kernel saves the passes over memory
    // that the separate ReLU costs. x must not alias y.

    /// `y = max(batchNormForwardTraining(x), 0)` (NaN propagates, as in `reluForward`); the
    /// statistics, saved and running, exactly as `batchNormForwardTraining`.
    func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                      runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                      momentum: Float, epsilon: Float)
    /// `y = max(batchNormForwardInference(x), 0)`.
    func batchNormReLUForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                       runningMean: Tensor, runningVar: Tensor, epsilon: Float)
    /// Backward of `batchNormReLUForwardTraining`: `batchNormBackward` with the gradient of the
    /// normalised values `dy * (y > 0)`, y being the fused forward's output (ReLU's mask). Overwrites
    /// dx, writes or adds dgamma, dbeta per `mode`; dy's contents afterwards are unspecified (the
    /// composed default masks it in place). gamma, beta and the saved statistics are the forward's,
    /// so that a backend may recompute the mask from x instead of reading y (the CPU does: one
    /// stream fewer in each pass, as its forward normalises with exactly that affine map).
    func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor, saveMean: Tensor,
                               saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                               mode: GradMode, epsilon: Float)

    // MARK: Batch norm + residual add + ReLU, fused (the end of a ResNet basic block)
    //
    // `y = max(bn(x) + residual, 0)`, with `bn(x) + residual` rounded as `add` rounds it. No
    // backward of its own: the residual branch needs ReLU's gradient anyway, so callers run
    // `reluBackward` and then `batchNormBackward`. residual has x's shape and may not alias y.

    /// The training forward (statistics exactly as `batchNormForwardTraining`), then + residual, then ReLU.
    func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                         runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         momentum: Float, epsilon: Float)
    /// The inference forward, then + residual, then ReLU.
    func batchNormAddReLUForwardInference(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                          runningMean: Tensor, runningVar: Tensor, epsilon: Float)
}

/// The fused batch norm + ReLU as the composition of the unfused kernels: what a backend without
/// fused kernels (cuDNN's batch norm) runs.
public extension BatchNormKernels where Self: ActivationKernels & ElementwiseKernels {
    func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                         runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         momentum: Float, epsilon: Float) {
        batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                 runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                 momentum: momentum, epsilon: epsilon)
        add(y, residual, output: y)
        reluForward(y, output: y)
    }

    func batchNormAddReLUForwardInference(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                          runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                  runningVar: runningVar, epsilon: epsilon)
        add(y, residual, output: y)
        reluForward(y, output: y)
    }
}

public extension BatchNormKernels where Self: ActivationKernels {
    func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                      runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                      momentum: Float, epsilon: Float) {
        batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                 runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                 momentum: momentum, epsilon: epsilon)
        reluForward(y, output: y)
    }

    func batchNormReLUForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                       runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                  runningVar: runningVar, epsilon: epsilon)
        reluForward(y, output: y)
    }

    func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor, saveMean: Tensor,
                               saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                               mode: GradMode, epsilon: Float) {
        ShapeChecks.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                          saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta)
        reluBackward(output: y, gradOutput: dy, gradInput: dy)
        batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                          gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
    }
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                                runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                                _ what: StaticString = "batchNormForwardTraining") {
        batchNormInput(x, y, what)
        perChannel(x, gamma, what); perChannel(x, beta, what); perChannel(x, runningMean, what)
        perChannel(x, runningVar, what); perChannel(x, saveMean, what); perChannel(x, saveInvStd, what)
        // The unbiased variance of the running statistics needs two values.
        precondition(x.count > x.shape[1], "\(what) needs more than one value per channel, x \(x.shape)")
    }

    @inline(__always)
    public static func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                                 runningMean: Tensor, runningVar: Tensor,
                                                 _ what: StaticString = "batchNormForwardInference") {
        batchNormInput(x, y, what)
        perChannel(x, gamma, what); perChannel(x, beta, what); perChannel(x, runningMean, what); perChannel(x, runningVar, what)
    }

    @inline(__always)
    public static func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                         _ what: StaticString = "batchNormBackward") {
        batchNormInput(x, dy, what)
        batchNormInput(x, dx, what)
        perChannel(x, gamma, what); perChannel(x, saveMean, what); perChannel(x, saveInvStd, what)
        perChannel(x, gradGamma, what); perChannel(x, gradBeta, what)
    }

    /// The fused batch norm + ReLU: the forwards as `batchNormForwardTraining`/`Inference` (with
    /// their own names); the backward as `batchNormBackward` plus the forward's output y.
    @inline(__always)
    public static func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor,
                                             saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor,
                                             gradBeta: Tensor) {
        let what: StaticString = "batchNormReLUBackward"
        batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                          gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, what)
        batchNormInput(x, y, what)
        perChannel(x, beta, what)
    }

    /// The fused batch norm + add + ReLU: the forward's checks, and the residual of x's shape.
    @inline(__always)
    public static func batchNormResidual(input x: Tensor, residual: Tensor, output y: Tensor, _ what: StaticString) {
        batchNormInput(x, residual, what)
        precondition(residual.storage !== y.storage || residual.offset != y.offset, "\(what): residual aliases y")
    }

    /// x (N, C) or (N, C, H, W) and `other` (y, dy or dx) of the same shape.
    @inline(__always)
    static func batchNormInput(_ x: Tensor, _ other: Tensor, _ what: StaticString) {
        precondition(x.rank == 2 || x.rank == 4, "\(what): x \(x.shape) must be (N, C) or (N, C, H, W)")
        precondition(other.shape == x.shape, "\(what): \(other.shape) for x \(x.shape)")
    }

    /// One value per channel of x.
    @inline(__always)
    static func perChannel(_ x: Tensor, _ t: Tensor, _ what: StaticString) {
        precondition(t.count == x.shape[1], "\(what): \(t) for \(x.shape[1]) channels")
    }
}
