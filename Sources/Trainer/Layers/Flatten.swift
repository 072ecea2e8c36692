import GPUTensor

/// (N, C, H, W) -> (N, C*H*W) in PyTorch's (C, H, W) order (`torch.flatten(x, 1)`), so the dense
/// weights after it are PyTorch's.
///
/// A backend may store rank-4 tensors in its own order (the CPU keeps them channels-last), so a
/// reshaped view of the input would not be (C, H, W)-ordered: the layer copies through
/// `backend.copy`, which copies in logical order, into buffers of its own (a few hundred KB per
/// batch, next to the convolutions' megabytes). Inputs of other ranks are reshaped views.
public final class Flatten: Layer {
    public let name: String
    public var isFrozen = false
    private var backend: Backend!
    private var inputShape: [Int] = []
    private var output: Tensor?      // (maxBatch, C*H*W), for (C, H, W) inputs
    private var gradInput: Tensor?   // (maxBatch, C, H, W)

    public init(name: String = "") { self.name = name }

    public func outputShape(input: [Int]) -> [Int] { [input.reduce(1, *)] }
    public func cost(input: [Int]) -> LayerCost { .zero }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        self.backend = backend
        inputShape = input
        if input.count == 3 {
            output = try backend.allocate(batched(maxBatch, outputShape(input: input)))
            gradInput = try backend.allocate(batched(maxBatch, input))
        } else {
            output = nil
            gradInput = nil
        }
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        precondition(Array(x.shape.dropFirst()) == inputShape, "Flatten: got \(x.shape), prepared for \(inputShape)")
        guard let output else { return x.reshaped([x.shape[0], inputShape.reduce(1, *)]) }
        let y = output.slice(0..<x.shape[0])
        backend.copy(x, to: y)
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let gradInput else { return dy.reshaped(batched(dy.shape[0], inputShape)) }
        let dx = gradInput.slice(0..<dy.shape[0])
        backend.copy(dy, to: dx)
        return dx
    }
}
