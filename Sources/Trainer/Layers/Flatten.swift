import GPUTensor

/// (N, C, H, W) -> (N, C*H*W): a reshaped view, no copy (`torch.flatten(x, 1)`).
public final class Flatten: Layer {
    public let name: String
    public var isFrozen = false
    private var inputShape: [Int] = []

    public init(name: String = "") { self.name = name }

    public func outputShape(input: [Int]) -> [Int] { [input.reduce(1, *)] }
    public func cost(input: [Int]) -> LayerCost { .zero }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws { inputShape = input }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        precondition(Array(x.shape.dropFirst()) == inputShape, "Flatten: got \(x.shape), prepared for \(inputShape)")
        return x.reshaped([x.shape[0], inputShape.reduce(1, *)])
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        computeInputGradient ? dy.reshaped(batched(dy.shape[0], inputShape)) : nil
    }
}
