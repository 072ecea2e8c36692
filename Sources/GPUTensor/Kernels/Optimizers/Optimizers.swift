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

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    /// Returns the velocity to use: nil with momentum 0, else `velocity`, which must be given.
    @inline(__always)
    public static func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, momentum: Float) -> Tensor? {
        precondition(p.count == grad.count, "sgdUpdate: parameter \(p), gradient \(grad)")
        guard momentum != 0 else { return nil }
        guard let velocity else { preconditionFailure("sgdUpdate: momentum \(momentum) needs a velocity tensor") }
        precondition(velocity.count == p.count, "sgdUpdate: velocity \(velocity) for parameter \(p)")
        return velocity
    }

    /// Returns the momentum buffer to use: nil with momentum 0, else `buffer`, which must be given.
    @inline(__always)
    public static func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor,
                                     momentumBuffer buffer: Tensor?, momentum: Float) -> Tensor? {
        precondition(p.count == grad.count && p.count == sq.count, "rmspropUpdate: parameter \(p), gradient \(grad), square average \(sq)")
        guard momentum != 0 else { return nil }
        guard let buffer else { preconditionFailure("rmspropUpdate: momentum \(momentum) needs a momentum buffer") }
        precondition(buffer.count == p.count, "rmspropUpdate: momentum buffer \(buffer) for parameter \(p)")
        return buffer
    }

    @inline(__always)
    public static func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor, step: Int) {
        precondition(p.count == grad.count && p.count == m.count && p.count == v.count,
                     "adamUpdate: parameter \(p), gradient \(grad), moments \(m), \(v)")
        precondition(step >= 1, "adamUpdate: step \(step) must count from 1")
    }
}
