import GPUTensor

/// Fully connected layer, PyTorch `nn.Linear`: `y = x W^T + b` with `weight` (out, in) He-normal
/// (fan-in `in`) and `bias` (out) zeros. Input (N, in), output (N, out).
public final class Dense: Layer {
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter     // (out, in)
    public let bias: Parameter?      // (out)
    public var isFrozen = false

    private var backend: Backend!
    private var maxBatch = 0
    private var output: Tensor!      // (maxBatch, out)
    private var gradInput: Tensor!   // (maxBatch, in)
    private var input: Tensor?       // (N, in)

    public init(name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true) {
        precondition(inFeatures > 0 && outFeatures > 0)
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(name: name + ".weight", shape: [outFeatures, inFeatures],
                           initializer: .heNormal(fanIn: inFeatures))
        self.bias = bias ? Parameter(name: name + ".bias", shape: [outFeatures], initializer: .constant(0)) : nil
    }

    public var ownParameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    public func outputShape(input: [Int]) -> [Int] {
        precondition(input == [inFeatures], "\(name): expected (\(inFeatures)), got \(input)")
        return [outFeatures]
    }

    public func cost(input: [Int]) -> LayerCost {
        _ = outputShape(input: input)
        let f = 2.0 * Double(inFeatures * outFeatures)
        return LayerCost(parameters: parameterCount, forward: f, backwardData: f, backwardWeight: f)
    }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        _ = outputShape(input: input)
        try allocateOwnState(on: backend)
        self.backend = backend
        self.maxBatch = maxBatch
        output = try backend.allocate([maxBatch, outFeatures])
        gradInput = try backend.allocate([maxBatch, inFeatures])
        self.input = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, [inFeatures], maxBatch, name)
        let n = x.shape[0]
        let y = output.slice(0..<n)
        // y (N, out) = x (N, in) * W^T (in, out)
        backend.gemm(transposeA: false, transposeB: true, m: n, n: outFeatures, k: inFeatures,
                     alpha: 1, a: x, b: weight.value, beta: 0, c: y)
        if let b = bias { backend.addBias(y, bias: b.value) }
        input = x
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let n = x.shape[0]
        if !isFrozen {
            // dW (out, in) = dy^T (out, N) * x (N, in)
            backend.gemm(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: n,
                         alpha: 1, a: dy, b: x, beta: 0, c: weight.grad)
            if let b = bias { backend.biasBackward(gradOutput: dy, gradBias: b.grad, mode: .overwrite) }
        }
        guard computeInputGradient else { return nil }
        // dx (N, in) = dy (N, out) * W (out, in)
        let dx = gradInput.slice(0..<n)
        backend.gemm(transposeA: false, transposeB: false, m: n, n: inFeatures, k: outFeatures,
                     alpha: 1, a: dy, b: weight.value, beta: 0, c: dx)
        return dx
    }
}
