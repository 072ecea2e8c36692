import GPUTensor

/// Max pooling with a square window, PyTorch `nn.MaxPool2d(window, stride, padding)`
/// (implicit -infinity padding). Backward routes each gradient to the first maximum of its window.
public final class MaxPool2D: Layer {
    public let name: String
    public let window: Int
    public let stride: Int
    public let padding: Int
    public var isFrozen = false

    private var backend: Backend!
    private var geometry: PoolGeometry!
    private var output: Tensor!      // (maxBatch, C, Ho, Wo)
    private var gradInput: Tensor!   // (maxBatch, C, H, W)
    private var saved: (x: Tensor, y: Tensor)?

    public init(name: String = "", window: Int, stride: Int? = nil, padding: Int = 0) {
        self.name = name
        self.window = window
        self.stride = stride ?? window
        self.padding = padding
    }

    func geometry(batch: Int, input: [Int]) -> PoolGeometry {
        precondition(input.count == 3, "MaxPool2D \(name): expected (C, H, W), got \(input)")
        return PoolGeometry(batch: batch, channels: input[0], height: input[1], width: input[2],
                            window: window, stride: stride, padding: padding)
    }

    public func outputShape(input: [Int]) -> [Int] { Array(geometry(batch: 1, input: input).outputShape.dropFirst()) }
    public func cost(input: [Int]) -> LayerCost { _ = outputShape(input: input); return .zero }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        self.backend = backend
        let g = geometry(batch: maxBatch, input: input)
        geometry = g
        output = try backend.allocate(g.outputShape)
        gradInput = try backend.allocate(g.inputShape)
        saved = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, Array(geometry.inputShape.dropFirst()), geometry.batch, "MaxPool2D \(name)")
        var g = geometry!
        g.batch = x.shape[0]
        let y = output.slice(0..<g.batch)
        backend.maxPoolForward(g, input: x, output: y)
        saved = (x, y)
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let (x, y) = saved else { preconditionFailure("MaxPool2D \(name): backward before forward") }
        var g = geometry!
        g.batch = x.shape[0]
        let dx = gradInput.slice(0..<g.batch)
        backend.maxPoolBackward(g, input: x, output: y, gradOutput: dy, gradInput: dx)
        return dx
    }
}
