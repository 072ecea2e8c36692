import GPUTensor

/// The mean over H x W: (N, C, H, W) -> (N, C), as `F.adaptive_avg_pool2d(x, 1).flatten(1)`
/// (ResNet's `avgpool` + `flatten` before `fc`).
public final class GlobalAvgPool: Layer {
    public let name: String
    public var isFrozen = false

    private var backend: Backend!
    private var inputShape: [Int] = []   // (C, H, W)
    private var maxBatch = 0
    private var output: Tensor!          // (maxBatch, C)
    private var gradInput: Tensor!       // (maxBatch, C, H, W)
    private var lastBatch: Int?

    public init(name: String = "") { self.name = name }

    public func outputShape(input: [Int]) -> [Int] {
        precondition(input.count == 3, "GlobalAvgPool: expected (C, H, W), got \(input)")
        return [input[0]]
    }

    public func cost(input: [Int]) -> LayerCost { _ = outputShape(input: input); return .zero }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        self.backend = backend
        inputShape = input
        self.maxBatch = maxBatch
        output = try backend.allocate(batched(maxBatch, outputShape(input: input)))
        gradInput = try backend.allocate(batched(maxBatch, input))
        lastBatch = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, inputShape, maxBatch, "GlobalAvgPool")
        let y = output.slice(0..<x.shape[0])
        backend.globalAvgPoolForward(input: x, output: y)
        lastBatch = x.shape[0]
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let n = lastBatch else { preconditionFailure("GlobalAvgPool: backward before forward") }
        let dx = gradInput.slice(0..<n)
        backend.globalAvgPoolBackward(gradOutput: dy, gradInput: dx)
        return dx
    }
}
