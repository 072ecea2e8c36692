/// Activations.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol ActivationKernels: AnyObject {
    // MARK: Activations

    /// `y = max(x, 0)`; x and y may be the same tensor.
    func reluForward(_ x: Tensor, output y: Tensor)
    /// `dx = dy * (y > 0)` from the forward output y; dx may alias dy.
    func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor)
}
