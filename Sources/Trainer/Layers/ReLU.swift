import GPUTensor

/// `y = max(x, 0)`. In place by default (as PyTorch's `inplace=True` in ResNet and VGG): the output
/// is the input tensor, and backward writes dx into dy. Do not put an in-place ReLU after a layer
/// whose backward reads its own output (`MaxPool2D`); the model builders never do.
public final class ReLU: Layer {
    public let name: String
    public let inPlace: Bool
    public var isFrozen = false

    private var backend: Backend!
    private var inputShape: [Int] = []
    private var maxBatch = 0
    private var output: Tensor?      // (maxBatch, ...) when not in place
    private var gradInput: Tensor?   // (maxBatch, ...) when not in place
    private var lastOutput: Tensor?  // (N, ...)
    /// Whether the last forward ran fused into the batch norm before, which applies the mask in
    /// its backward (`tookFusedForward`): this backward then passes dy through.
    private var maskAppliedBefore = false

    public init(name: String = "", inPlace: Bool = true) {
        self.name = name
        self.inPlace = inPlace
    }

    public func outputShape(input: [Int]) -> [Int] { input }
    public func cost(input: [Int]) -> LayerCost { .zero }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        self.backend = backend
        inputShape = input
        self.maxBatch = maxBatch
        if !inPlace {
            output = try backend.allocate(batched(maxBatch, input))
            gradInput = try backend.allocate(batched(maxBatch, input))
        }
        lastOutput = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, inputShape, maxBatch, "ReLU \(name)")
        let y = inPlace ? x : output!.slice(0..<x.shape[0])
        backend.reluForward(x, output: y)
        lastOutput = y
        maskAppliedBefore = false
        return y
    }

    /// The batch norm before this (in-place) ReLU applied it in its own kernel, whose output is `y`:
    /// this forward is done. `appliesMask`: this backward still applies ReLU's mask (the fused
    /// kernel added a residual, whose branch needs that gradient); otherwise it passes dy through
    /// and the batch norm's backward applies the mask.
    func tookFusedForward(output y: Tensor, appliesMask: Bool) {
        precondition(inPlace, "ReLU \(name): only an in-place ReLU can be fused into the layer before it")
        checkBatch(y, inputShape, maxBatch, "ReLU \(name)")
        lastOutput = y
        maskAppliedBefore = !appliesMask
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let y = lastOutput else { preconditionFailure("ReLU \(name): backward before forward") }
        if maskAppliedBefore { return dy }
        let dx = inPlace ? dy : gradInput!.slice(0..<y.shape[0])
        backend.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        return dx
    }
}
