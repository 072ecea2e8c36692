/// Dense algebra: the GEMM of fully connected layers.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol DenseAlgebraKernels: AnyObject {
    // MARK: Dense algebra

    /// Row-major `c = alpha * op(a) * op(b) + beta * c` with `op(a)` (m, k) and `op(b)` (k, n).
    /// Stored shapes: `a` is (m, k), or (k, m) when `transposeA`; `b` is (k, n), or (n, k) when
    /// `transposeB`; `c` is (m, n).
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
              alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor)
}
