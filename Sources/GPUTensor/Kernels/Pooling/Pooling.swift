/// Max, average and global-average pooling.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
///
/// Max pooling's window positions: a training forward may save, per output element, where its
/// window's maximum was, so that the backward routes dy without reading x again (as PyTorch's
/// `max_pool2d_with_indices` and oneDNN's pooling workspace). The caller owns that memory: it
/// allocates `maxPoolWorkspaceCount(g)` float32 elements (a layer per batch shape, reused), passes
/// them to the training forward and the SAME tensor, untouched, to the backward of that forward.
/// Its contents are the backend's own (the CPU backend: one byte per output element); they are
/// valid only for the forward that wrote them (same geometry, same x), never a checkpoint tensor.
/// A backend that recomputes the positions from x and y (CUDA) asks for 0 elements and ignores it.
public protocol PoolingKernels: AnyObject {
    // MARK: Pooling

    /// Float32 elements of the workspace `maxPoolForward` writes for `maxPoolBackward` at this
    /// geometry (its batch included); 0 when the backend needs none. Never more for a smaller batch.
    func maxPoolWorkspaceCount(_ g: PoolGeometry) -> Int
    /// y = the maximum of each window; padding is -infinity, NaN wins (as PyTorch). With a
    /// `workspace` (training: at least `maxPoolWorkspaceCount(g)` elements) it also saves each
    /// output's window position for `maxPoolBackward`; nil (inference) saves nothing.
    func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?)
    /// Routes each dy to the first maximal input of its window (row-major order; a NaN is the
    /// maximum); overwrites dx. `workspace` is the one the training forward of this x wrote (nil
    /// only when `maxPoolWorkspaceCount(g)` is 0); x and y are those of that forward.
    func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?,
                         gradOutput dy: Tensor, gradInput dx: Tensor)
    func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor)
    func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor)
    /// x (N, C, H, W) -> y (N, C) or (N, C, 1, 1), the mean over H x W.
    func globalAvgPoolForward(input x: Tensor, output y: Tensor)
    func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor)
}

public extension PoolingKernels {
    /// No workspace unless the backend asks for one (the CUDA kernels recompute from x and y).
    func maxPoolWorkspaceCount(_ g: PoolGeometry) -> Int { 0 }
}

public extension Backend {
    /// A max-pool workspace for `g` (`maxPoolWorkspaceCount`), or nil where the backend needs none.
    func allocateMaxPoolWorkspace(_ g: PoolGeometry) throws -> Tensor? {
        let count = maxPoolWorkspaceCount(g)
        return count > 0 ? try allocate([count]) : nil
    }
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    /// x (or dx): `g.inputShape`, y (or dy): `g.outputShape`.
    @inline(__always)
    public static func pool(_ g: PoolGeometry, input x: Tensor, output y: Tensor, _ what: StaticString) {
        precondition(isShape(x, g.batch, g.channels, g.height, g.width)
                     && isShape(y, g.batch, g.channels, g.outHeight, g.outWidth),
                     "\(what): x \(x.shape), y \(y.shape) for pool \(g.inputShape) -> \(g.outputShape)")
    }

    /// A max-pool workspace: nil only where the backend needs none (`count` 0), else at least
    /// `count` elements (`maxPoolWorkspaceCount`).
    @inline(__always)
    public static func maxPoolWorkspace(_ workspace: Tensor?, count: Int, _ what: StaticString) {
        precondition(count == 0 || (workspace?.count ?? 0) >= count,
                     "\(what): workspace \(workspace?.shape ?? []) for \(count) elements (maxPoolWorkspaceCount)")
    }

    /// x (or dx) (N, C, H, W), y (or dy) of N*C values.
    @inline(__always)
    public static func globalAvgPool(input x: Tensor, output y: Tensor, _ what: StaticString) {
        precondition(x.rank == 4 && y.count == x.shape[0] * x.shape[1],
                     "\(what): x \(x.shape) must be (N, C, H, W), y \(y.shape) (N, C)")
    }
}
