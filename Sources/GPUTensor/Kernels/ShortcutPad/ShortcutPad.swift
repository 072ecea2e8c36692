/// The strided channel copy: a spatially subsampled copy of x into a channel slice of y, zero
/// elsewhere. Its first use is the residual shortcut, option A (He et al. 2016, CIFAR).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol ShortcutKernels: AnyObject {
    // MARK: Strided channel copy (residual shortcut, option A, He et al. 2016, CIFAR)

    /// `y[n, c + channelOffset, i, j] = x[n, c, i*stride, j*stride]` for `c < Cin`, all other y zero.
    /// x (N, Cin, H, W), y (N, Cout, ceil(H/stride), ceil(W/stride)), with `stride >= 1`,
    /// `channelOffset >= 0` and `channelOffset + Cin <= Cout` (`ShapeChecks.shortcutPad`).
    /// Uses: ResNet's option-A shortcut (stride 2, offset (Cout - Cin) / 2); a plain copy (stride 1,
    /// offset 0, Cout == Cin); zero-extended channels (offset 0); x placed into any channel slice
    /// of a wider y (offset k), e.g. one part of a channel concatenation whose parts are added.
    func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int)
    /// The adjoint: `dx[n, c, i*stride, j*stride] = dy[n, c + channelOffset, i, j]`, all other dx zero
    /// (the channels of dy outside the slice get no gradient: they were zeros, not inputs).
    func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int)
}
