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

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        precondition(a.count == b.count && a.count == out.count, "add \(a) + \(b) -> \(out)")
    }

    @inline(__always)
    public static func scale(_ x: Tensor, output out: Tensor) {
        precondition(x.count == out.count, "scale \(x) -> \(out)")
    }

    @inline(__always)
    public static func axpy(x: Tensor, y: Tensor) {
        precondition(x.count == y.count, "axpy \(x) into \(y)")
    }

    @inline(__always)
    public static func argmax(rows x: Tensor, output out: Tensor) {
        precondition(x.rank == 2 && out.count == x.shape[0], "argmax of \(x) into \(out)")
        precondition(x.shape[1] > 0, "argmax over empty rows \(x)")
    }
}
