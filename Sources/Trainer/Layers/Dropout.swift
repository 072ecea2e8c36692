import GPUTensor

/// Inverted dropout, PyTorch `nn.Dropout(p)`: in training, `y = x * mask` with
/// `mask_i = u_i >= p ? 1/(1-p) : 0`; the identity in inference and while frozen.
///
/// Randomness: stream `(seed ^ fnv1a(name), counter)` from Philox, where `seed` is set by
/// `Model.initialize(seed:)` and `counter` counts this layer's training forwards (saved with the
/// RNG state in checkpoints through `Model.dropoutCounter`).
public final class Dropout: Layer {
    public let name: String
    public let probability: Float
    public var seed: UInt64 = 0
    public var counter: UInt64 = 0
    public var isFrozen = false

    private var backend: Backend!
    private var inputShape: [Int] = []
    private var maxBatch = 0
    private var output: Tensor!      // (maxBatch, ...)
    private var mask: Tensor!        // (maxBatch, ...)
    private var gradInput: Tensor!   // (maxBatch, ...)
    private var lastBatch: (n: Int, dropped: Bool)?

    public init(name: String, probability: Float) {
        precondition(probability >= 0 && probability < 1, "dropout probability \(probability) not in [0, 1)")
        self.name = name
        self.probability = probability
    }

    public func outputShape(input: [Int]) -> [Int] { input }
    public func cost(input: [Int]) -> LayerCost { .zero }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        self.backend = backend
        inputShape = input
        self.maxBatch = maxBatch
        output = try backend.allocate(batched(maxBatch, input))
        mask = try backend.allocate(batched(maxBatch, input))
        gradInput = try backend.allocate(batched(maxBatch, input))
        lastBatch = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, inputShape, maxBatch, name)
        let n = x.shape[0]
        guard mode == .training && !isFrozen && probability > 0 else {
            lastBatch = (n, false)
            return x
        }
        let y = output.slice(0..<n)
        backend.dropoutForward(x, output: y, mask: mask.slice(0..<n), probability: probability,
                               seed: seed ^ fnv1a64(name), counter: counter)
        counter &+= 1
        lastBatch = (n, true)
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let (n, dropped) = lastBatch else { preconditionFailure("\(name): backward before forward") }
        guard dropped else { return dy }
        let dx = gradInput.slice(0..<n)
        backend.dropoutBackward(gradOutput: dy, mask: mask.slice(0..<n), gradInput: dx)
        return dx
    }
}
