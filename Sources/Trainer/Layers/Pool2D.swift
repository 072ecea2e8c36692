import GPUTensor

/// What `MaxPool2D` and `AvgPool2D` share: a square window over NCHW input, the geometry, the
/// output and input-gradient buffers, and the batch bookkeeping. Subclasses name their kernels.
public class Pool2D: Layer {
    public let name: String
    public let window: Int
    public let stride: Int
    public let padding: Int
    public var isFrozen = false

    var backend: Backend!
    var geometry: PoolGeometry!
    private var output: Tensor!      // (maxBatch, C, Ho, Wo)
    private var gradInput: Tensor!   // (maxBatch, C, H, W)
    /// Input and output of the last forward (max pooling's backward reads both).
    private var saved: (x: Tensor, y: Tensor)?

    init(name: String, window: Int, stride: Int?, padding: Int) {
        self.name = name
        self.window = window
        self.stride = stride ?? window
        self.padding = padding
    }

    /// For messages: `MaxPool2D` or `AvgPool2D`.
    var kind: String { preconditionFailure("Pool2D is abstract") }

    /// Allocates what the subclass's kernels need beyond the output and input gradient, for
    /// `g` (the largest batch); called by `prepare` once `backend` is set.
    func prepareKernels(_ g: PoolGeometry) throws {}

    func poolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, mode: ForwardMode) {
        preconditionFailure("Pool2D is abstract")
    }

    func poolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        preconditionFailure("Pool2D is abstract")
    }

    func geometry(batch: Int, input: [Int]) -> PoolGeometry {
        precondition(input.count == 3, "\(kind) \(name): expected (C, H, W), got \(input)")
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
        try prepareKernels(g)
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, Array(geometry.inputShape.dropFirst()), geometry.batch, "\(kind) \(name)")
        var g = geometry!
        g.batch = x.shape[0]
        let y = output.slice(0..<g.batch)
        poolForward(g, input: x, output: y, mode: mode)
        saved = (x, y)
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let (x, y) = saved else { preconditionFailure("\(kind) \(name): backward before forward") }
        var g = geometry!
        g.batch = x.shape[0]
        let dx = gradInput.slice(0..<g.batch)
        poolBackward(g, input: x, output: y, gradOutput: dy, gradInput: dx)
        return dx
    }
}
