import GPUTensor

/// Average pooling with a square window, PyTorch `nn.AvgPool2d(window, stride, padding)` with
/// `count_include_pad=True`.
public final class AvgPool2D: Pool2D {
    public override init(name: String = "", window: Int, stride: Int? = nil, padding: Int = 0) {
        super.init(name: name, window: window, stride: stride, padding: padding)
    }

    override var kind: String { "AvgPool2D" }

    override func poolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, mode: ForwardMode) {
        backend.avgPoolForward(g, input: x, output: y)
    }

    override func poolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        backend.avgPoolBackward(g, gradOutput: dy, gradInput: dx)
    }
}
