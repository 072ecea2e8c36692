/// Loss.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol LossKernels: AnyObject {
    // MARK: Loss

    /// Fused log-softmax + negative log-likelihood over logits (N, K) with labels (N) holding
    /// whole class indices in 0..<K. Writes the per-sample loss (N) and, if given,
    /// `gradLogits = (softmax(logits) - onehot(label)) * gradScale` (N, K) (use 1/N for a mean loss).
    func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float)
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?) {
        precondition(logits.rank == 2, "softmaxCrossEntropy: logits \(logits.shape) must be (N, K)")
        let rows = logits.shape[0], k = logits.shape[1]
        precondition(k > 0 && labels.count == rows && losses.count == rows,
                     "softmaxCrossEntropy: logits \(logits.shape), labels \(labels.shape), losses \(losses.shape)")
        if let g = gradLogits { precondition(g.count == logits.count, "softmaxCrossEntropy: gradLogits \(g.shape)") }
    }
}
