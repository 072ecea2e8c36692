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
