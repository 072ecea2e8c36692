import GPUTensor

/// Layers run in order, PyTorch `nn.Sequential`-like; the children carry their own full names
/// (`features.0`, `features.1`, ...), so a container adds nothing to the state-dict keys.
/// Used for model blocks (VGG's conv-bn-relu(-pool), the ResNet stem, a cnn stage).
public final class Sequential: Layer {
    public let name: String
    public let layers: [any Layer]
    public var isFrozen = false

    public init(name: String = "", _ layers: [any Layer]) {
        self.name = name
        self.layers = layers
    }

    public var children: [any Layer] { layers }

    public func outputShape(input: [Int]) -> [Int] { outputShapeChain(layers, input: input) }
    public func cost(input: [Int]) -> LayerCost { costChain(layers, input: input) }

    public func stepCost(input: [Int], computeInputGradient: Bool, ignoreFreezing: Bool) -> LayerCost {
        stepCostChain(layers, input: input, computeInputGradient: computeInputGradient, ignoreFreezing: ignoreFreezing)
    }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        try prepareChain(layers, input: input, maxBatch: maxBatch, backend: backend)
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor { forwardChain(layers, x, mode: mode) }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        backwardChain(layers, dy, computeInputGradient: computeInputGradient)
    }
}
