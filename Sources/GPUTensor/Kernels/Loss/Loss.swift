/// Loss.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol LossKernels: AnyObject {
    // MARK: Loss

    /// Fused log-softmax + negative log-likelihood over logits (N, K) with labels (N) holding
    /// whole class indices in 0..<K. Writes the per-sample loss (N) and, if given,
    /// `gradLogits = (softmax(logits) - onehot(label)) * gradScale` (N, K) (use 1/N for a mean loss).
    func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float)
}
