import GPUTensor

/// 2-D convolution, PyTorch `nn.Conv2d` (square kernel, zero padding, optional bias).
///
/// Parameters: `weight` (Cout, Cin, K, K) He-normal with fan-in Cin*K*K, `bias` (Cout) zeros.
public final class Conv2D: Layer {
    public let name: String
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter       // (Cout, Cin, K, K)
    public let bias: Parameter?        // (Cout)
    public var isFrozen = false

    private var backend: Backend!
    private var geometry: ConvGeometry!   // for maxBatch
    private var output: Tensor!           // (maxBatch, Cout, Ho, Wo)
    private var gradInput: Tensor!        // (maxBatch, Cin, H, W)
    private var input: Tensor?            // (N, Cin, H, W), the last forward's x

    public init(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0)
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        weight = Parameter(name: name + ".weight", shape: [outChannels, inChannels, kernel, kernel],
                           initializer: .heNormal(fanIn: inChannels * kernel * kernel))
        self.bias = bias ? Parameter(name: name + ".bias", shape: [outChannels], initializer: .constant(0)) : nil
    }

    public var ownParameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    private func geometry(batch: Int, input: [Int]) -> ConvGeometry {
        precondition(input.count == 3 && input[0] == inChannels,
                     "\(name): expected (\(inChannels), H, W), got \(input)")
        return ConvGeometry(batch: batch, inChannels: inChannels, height: input[1], width: input[2],
                            outChannels: outChannels, kernel: kernel, stride: stride, padding: padding)
    }

    public func outputShape(input: [Int]) -> [Int] {
        Array(geometry(batch: 1, input: input).outputShape.dropFirst())
    }

    public func cost(input: [Int]) -> LayerCost {
        let f = geometry(batch: 1, input: input).flops
        return LayerCost(parameters: parameterCount, forward: f, backwardData: f, backwardWeight: f)
    }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        try allocateOwnState(on: backend)
        self.backend = backend
        let g = geometry(batch: maxBatch, input: input)
        geometry = g
        output = try backend.allocate(g.outputShape)
        gradInput = try backend.allocate(g.inputShape)
        self.input = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, Array(geometry.inputShape.dropFirst()), geometry.batch, name)
        let n = x.shape[0]
        let y = output.slice(0..<n)
        backend.conv2dForward(geometry.withBatch(n), input: x, weight: weight.value, bias: bias?.value, output: y)
        input = x
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let g = geometry.withBatch(x.shape[0])
        if !isFrozen {
            backend.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: weight.grad, mode: .overwrite)
            if let b = bias { backend.biasBackward(gradOutput: dy, gradBias: b.grad, mode: .overwrite) }
        }
        guard computeInputGradient else { return nil }
        let dx = gradInput.slice(0..<g.batch)
        backend.conv2dBackwardData(g, gradOutput: dy, weight: weight.value, gradInput: dx)
        return dx
    }
}
