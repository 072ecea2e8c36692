/// `shortcutPad`: a spatially subsampled copy of x into a channel slice of y, zero elsewhere
/// (a strided channel copy). Its first use is the residual shortcut, option A (He et al. 2016,
/// CIFAR), hence the name.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol ShortcutPadKernels: AnyObject {
    // MARK: shortcutPad (residual shortcut, option A, He et al. 2016, CIFAR)

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

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    /// `ceil(size / stride)`: the output size of `shortcutPad` along a strided axis.
    @inline(__always)
    public static func stridedSize(_ size: Int, _ stride: Int) -> Int { (size + stride - 1) / stride }

    /// x (N, Cin, H, W) into y (N, Cout, ceil(H/stride), ceil(W/stride)) at channels
    /// `channelOffset ..< channelOffset + Cin` (for backward: dx in place of x, dy of y).
    @inline(__always)
    public static func shortcutPad(_ x: Tensor, _ y: Tensor, stride: Int, channelOffset: Int, _ what: StaticString) {
        precondition(stride >= 1 && x.rank == 4 && y.rank == 4 && x.shape[0] == y.shape[0]
                     && channelOffset >= 0 && channelOffset + x.shape[1] <= y.shape[1]
                     && y.shape[2] == stridedSize(x.shape[2], stride) && y.shape[3] == stridedSize(x.shape[3], stride),
                     "\(what): x \(x.shape) -> y \(y.shape) with stride \(stride), channel offset \(channelOffset)")
    }
}
