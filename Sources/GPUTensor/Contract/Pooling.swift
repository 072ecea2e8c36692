/// Max, average and global-average pooling.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol PoolingKernels: AnyObject {
    // MARK: Pooling

    func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor)
    /// Routes each dy to the first maximal input of its window (row-major order); overwrites dx.
    func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor)
    func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor)
    func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor)
    /// x (N, C, H, W) -> y (N, C) or (N, C, 1, 1), the mean over H x W.
    func globalAvgPoolForward(input x: Tensor, output y: Tensor)
    func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor)
}
