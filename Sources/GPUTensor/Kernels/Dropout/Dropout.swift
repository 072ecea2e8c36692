/// Dropout.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol DropoutKernels: AnyObject {
    // MARK: Dropout

    /// With `u_i = Philox.uniform(seed, counter, i)`: `mask_i = u_i >= p ? 1/(1-p) : 0`, `y = x * mask`.
    func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64)
    /// `dx = dy * mask`.
    func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor)
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float) {
        precondition(x.count == y.count && x.count == mask.count, "dropoutForward \(x) -> \(y), mask \(mask)")
        precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
    }

    @inline(__always)
    public static func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        precondition(dy.count == mask.count && dy.count == dx.count, "dropoutBackward \(dy), mask \(mask) -> \(dx)")
    }
}
