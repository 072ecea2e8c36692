/// Residual shortcut, option A (He et al. 2016, CIFAR).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol ShortcutKernels: AnyObject {
    // MARK: Residual shortcut, option A (He et al. 2016, CIFAR)

    /// `y[n, c + channelOffset, i, j] = x[n, c, i*stride, j*stride]`, all other y zero.
    /// x (N, Cin, H, W), y (N, Cout, ceil(H/stride), ceil(W/stride)).
    func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int)
    /// The adjoint: `dx[n, c, i*stride, j*stride] = dy[n, c + channelOffset, i, j]`, all other dx zero.
    func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int)
}
