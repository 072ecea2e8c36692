/// Activations.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol ActivationKernels: AnyObject {
    // MARK: Activations

    /// `y = max(x, 0)`; x and y may be the same tensor.
    func reluForward(_ x: Tensor, output y: Tensor)
    /// `dx = dy * (y > 0)` from the forward output y; dx may alias dy.
    func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor)
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func reluForward(_ x: Tensor, output y: Tensor) {
        precondition(x.count == y.count, "reluForward \(x) -> \(y)")
    }

    @inline(__always)
    public static func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        precondition(y.count == dy.count && y.count == dx.count, "reluBackward \(y), \(dy), \(dx)")
    }
}
