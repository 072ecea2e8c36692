/// 2-D convolution (forward, backward data, backward filter) and its bias.
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol ConvolutionKernels: AnyObject {
    // MARK: Convolution

    /// `y = conv(x, w) (+ bias)`. x: `g.inputShape`, w: `g.weightShape`, bias: (Cout), y: `g.outputShape`.
    func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor)
    /// `dx = d(loss)/dx` from dy: `g.outputShape` and w; overwrites dx: `g.inputShape`.
    func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor)
    /// `dw (+)= d(loss)/dw` from x and dy.
    func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                              gradWeight dw: Tensor, mode: GradMode)
    /// `y[n, c, ...] += bias[c]` for y of shape (N, C) or (N, C, H, W).
    func addBias(_ y: Tensor, bias: Tensor)
    /// `db (+)= sum of dy over all axes but 1`, for dy (N, C) or (N, C, H, W).
    func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode)
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    /// x: `g.inputShape`, w: `g.weightShape`, y: `g.outputShape`, bias: (Cout) (for backward:
    /// dx in place of x, dw of w, dy of y).
    @inline(__always)
    public static func conv2d(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, output y: Tensor, bias: Tensor? = nil,
                              _ what: StaticString) {
        precondition(isShape(x, g.batch, g.inChannels, g.height, g.width)
                     && isShape(w, g.outChannels, g.inChannels / g.groups, g.kernelH, g.kernelW)
                     && isShape(y, g.batch, g.outChannels, g.outHeight, g.outWidth),
                     "\(what) \(g): x \(x.shape), w \(w.shape), y \(y.shape); expected \(g.inputShape), \(g.weightShape), \(g.outputShape)")
        if let bias { precondition(bias.count == g.outChannels, "\(what) \(g): bias \(bias.shape)") }
    }

    /// y (N, C) or (N, C, H, W) and a bias of C values (`addBias`; `biasBackward` with dy, db).
    @inline(__always)
    public static func bias(_ y: Tensor, bias: Tensor, _ what: StaticString) {
        precondition(y.rank == 2 || y.rank == 4, "\(what): \(y.shape) must be (N, C) or (N, C, H, W)")
        precondition(bias.count == y.shape[1], "\(what): bias \(bias.shape) for \(y.shape)")
    }
}
