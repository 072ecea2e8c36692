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
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let y = lastOutput else { preconditionFailure("ReLU \(name): backward before forward") }
        let dx = inPlace ? dy : gradInput!.slice(0..<y.shape[0])
        backend.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        return dx
    }
}
