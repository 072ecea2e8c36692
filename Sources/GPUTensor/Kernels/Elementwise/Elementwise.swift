/// Elementwise and reductions (same element counts; outputs may alias inputs).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol ElementwiseKernels: AnyObject {
    // MARK: Elementwise and reductions (same element counts; outputs may alias inputs)

    func fill(_ x: Tensor, value: Float)
    /// `out = a + b`.
    func add(_ a: Tensor, _ b: Tensor, output out: Tensor)
    /// `out = alpha * x`.
    func scale(_ x: Tensor, by alpha: Float, output out: Tensor)
    /// `y += alpha * x`.
    func axpy(alpha: Float, x: Tensor, y: Tensor)
    /// The sum of all elements (waits for the device).
    func sum(_ x: Tensor) throws -> Float
    /// For x (N, K) writes the index of each row's first maximum into out (N).
    func argmax(rows x: Tensor, output out: Tensor)
}
