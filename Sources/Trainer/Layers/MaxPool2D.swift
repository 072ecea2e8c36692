import GPUTensor

/// Max pooling with a square window, PyTorch `nn.MaxPool2d(window, stride, padding)`
/// (implicit -infinity padding). Backward routes each gradient to the first maximum of its window.
public final class MaxPool2D: Pool2D {
    public override init(name: String = "", window: Int, stride: Int? = nil, padding: Int = 0) {
        super.init(name: name, window: window, stride: stride, padding: padding)
    }

    override var kind: String { "MaxPool2D" }

    override func poolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        backend.maxPoolForward(g, input: x, output: y)
    }

    override func poolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        backend.maxPoolBackward(g, input: x, output: y, gradOutput: dy, gradInput: dx)
    }
}
