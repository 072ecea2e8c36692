/// Optimizer updates (PyTorch's update rules; weight decay is L2 added to the gradient unless stated).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol OptimizerKernels: AnyObject {
    // MARK: Optimizer updates (PyTorch's update rules; weight decay is L2 added to the gradient unless stated)

    /// `g = grad + wd*p; v = momentum*v + g; p -= lr * (nesterov ? g + momentum*v : v)`;
    /// with momentum 0, `velocity` may be nil and `p -= lr * g`.
    func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?,
                   learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool)
    /// `g = grad + wd*p; sq = alpha*sq + (1-alpha)*g^2; d = g / (sqrt(sq) + eps)`;
    /// with momentum: `buf = momentum*buf + d; p -= lr*buf`, else `p -= lr*d`.
    func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                       learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float)
    /// Adam (L2 weight decay into the gradient) or AdamW (`decoupled`: `p *= 1 - lr*wd` first).
    /// `step` is the 1-based count of updates including this one (for bias correction).
    func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                    learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float,
                    weightDecay wd: Float, decoupled: Bool, step: Int)
}
