import GPUTensor

/// How a residual block matches shapes when it changes stride or width (He et al. 2016).
public enum ResidualShortcut: String, Codable, Hashable, Sendable {
    /// Option A: subsample by the stride and zero-pad the channels, no parameters (the CIFAR
    /// ResNets of the paper; `F.pad(x[:, :, ::2, ::2], (0,0,0,0, planes//4, planes//4))`).
    case a = "A"
    /// Option B: 1x1 convolution with the stride + batch norm (`downsample.0`, `downsample.1`).
    case b = "B"
}

/// ResNet basic block: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))` with 3x3 convolutions
/// without bias; `conv1` carries the stride. Names as torchvision: `<name>.conv1`, `.bn1`, `.conv2`,
/// `.bn2`, and for option B `.downsample.0` (conv) and `.downsample.1` (bn). `midPlanes` (default
/// `planes`) is the width between conv1 and conv2, the one channel pruning may narrow: the
/// block's output width is tied to its shortcut.
public final class BasicBlock: Layer {
    public let name: String
    public let inPlanes: Int
    public let planes: Int
    /// Channels of conv1's output (bn1, conv2's input).
    public let midPlanes: Int
    public let stride: Int
    public let shortcut: ResidualShortcut
    public var isFrozen = false

    public let conv1: Conv2D
    public let bn1: BatchNorm2D
    private let relu1 = ReLU()
    public let conv2: Conv2D
    public let bn2: BatchNorm2D
    private let relu2 = ReLU()
    /// Option B projection, when the shape changes.
    public let downsample: (conv: Conv2D, bn: BatchNorm2D)?
    /// Option A channel padding on each side, when the shape changes.
    private let padOffset: Int?

    private var backend: Backend!
    private var padOutput: Tensor!     // (maxBatch, planes, Ho, Wo), option A
    private var padGradInput: Tensor!  // (maxBatch, inPlanes, H, W), option A
    private var lastBatch: Int?

    public init(name: String, inPlanes: Int, planes: Int, midPlanes: Int? = nil, stride: Int = 1, shortcut: ResidualShortcut) {
        let midPlanes = midPlanes ?? planes
        precondition(midPlanes > 0)
        self.name = name
        self.inPlanes = inPlanes
        self.planes = planes
        self.midPlanes = midPlanes
        self.stride = stride
        self.shortcut = shortcut
        conv1 = Conv2D(name: name + ".conv1", inChannels: inPlanes, outChannels: midPlanes, kernel: 3,
                       stride: stride, padding: 1, bias: false)
        bn1 = BatchNorm2D(name: name + ".bn1", channels: midPlanes)
        conv2 = Conv2D(name: name + ".conv2", inChannels: midPlanes, outChannels: planes, kernel: 3,
                       padding: 1, bias: false)
        bn2 = BatchNorm2D(name: name + ".bn2", channels: planes)
        let projects = stride != 1 || inPlanes != planes
        if projects && shortcut == .b {
            downsample = (Conv2D(name: name + ".downsample.0", inChannels: inPlanes, outChannels: planes,
                                 kernel: 1, stride: stride, bias: false),
                          BatchNorm2D(name: name + ".downsample.1", channels: planes))
        } else {
            downsample = nil
        }
        if projects && shortcut == .a {
            precondition(planes >= inPlanes && (planes - inPlanes) % 2 == 0,
                         "\(name): option A shortcut pads \(inPlanes) to \(planes) channels evenly")
            padOffset = (planes - inPlanes) / 2   // = planes/4 for the doubling blocks
        } else {
            padOffset = nil
        }
    }

    public var children: [any Layer] {
        var c: [any Layer] = [conv1, bn1, conv2, bn2]
        if let d = downsample { c += [d.conv, d.bn] }
        return c
    }

    public func outputShape(input: [Int]) -> [Int] {
        precondition(input.count == 3 && input[0] == inPlanes, "\(name): expected (\(inPlanes), H, W), got \(input)")
        return conv2.outputShape(input: conv1.outputShape(input: input))
    }

    public func cost(input: [Int]) -> LayerCost {
        let mid = conv1.outputShape(input: input), out = conv2.outputShape(input: mid)
        var c = conv1.cost(input: input) + bn1.cost(input: mid) + conv2.cost(input: mid) + bn2.cost(input: out)
        if let d = downsample { c += d.conv.cost(input: input) + d.bn.cost(input: out) }
        return c
    }

    public func stepCost(input: [Int], computeInputGradient: Bool, ignoreFreezing: Bool) -> LayerCost {
        let mid = conv1.outputShape(input: input), out = conv2.outputShape(input: mid)
        func leaf(_ l: any Layer, _ shape: [Int], _ wantInput: Bool) -> LayerCost {
            l.stepCost(input: shape, computeInputGradient: wantInput, ignoreFreezing: ignoreFreezing)
        }
        var c = leaf(conv1, input, computeInputGradient) + leaf(bn1, mid, true) + leaf(conv2, mid, true) + leaf(bn2, out, true)
        if let d = downsample { c += leaf(d.conv, input, computeInputGradient) + leaf(d.bn, out, true) }
        return c
    }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        self.backend = backend
        let out = outputShape(input: input)
        try prepareChain([conv1, bn1, relu1, conv2, bn2, relu2], input: input, maxBatch: maxBatch, backend: backend)
        if let d = downsample { try prepareChain([d.conv, d.bn], input: input, maxBatch: maxBatch, backend: backend) }
        if padOffset != nil {
            padOutput = try backend.allocate(batched(maxBatch, out))
            padGradInput = try backend.allocate(batched(maxBatch, input))
        }
        lastBatch = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        let n = x.shape[0]
        let a = conv1.forward(x, mode: mode)
        // bn1 + relu1 as one kernel (LayerFusion); relu1's backward then passes dy to bn1's.
        let r = LayerFusion.enabled ? bn1.forward(a, mode: mode, fusing: relu1)
                                    : relu1.forward(bn1.forward(a, mode: mode), mode: mode)
        let h = conv2.forward(r, mode: mode)
        let s: Tensor                         // (N, planes, Ho, Wo)
        if let d = downsample {
            s = d.bn.forward(d.conv.forward(x, mode: mode), mode: mode)
        } else if let offset = padOffset {
            s = padOutput.slice(0..<n)
            backend.shortcutPadForward(x, output: s, stride: stride, channelOffset: offset)
        } else {
            s = x
        }
        lastBatch = n
        if LayerFusion.enabled && LayerFusion.residualAdd {
            // relu(bn2(h) + s) in bn2's pass over h; relu2's backward still applies its mask.
            return bn2.forward(h, mode: mode, adding: s, fusing: relu2)
        }
        let y = bn2.forward(h, mode: mode)   // bn2's own output buffer: safe to add into
        backend.add(y, s, output: y)
        return relu2.forward(y, mode: mode)
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard let n = lastBatch else { preconditionFailure("\(name): backward before forward") }
        let g = relu2.backward(dy, computeInputGradient: true)!   // gradient of the sum, in dy's memory
        var h = bn2.backward(g, computeInputGradient: true)!
        h = conv2.backward(h, computeInputGradient: true)!
        h = relu1.backward(h, computeInputGradient: true)!
        h = bn1.backward(h, computeInputGradient: true)!
        let dx = conv1.backward(h, computeInputGradient: computeInputGradient)
        if let d = downsample {
            let t = d.bn.backward(g, computeInputGradient: true)!
            if let u = d.conv.backward(t, computeInputGradient: computeInputGradient), let dx {
                backend.axpy(alpha: 1, x: u, y: dx)
            }
        } else if let offset = padOffset, let dx {
            let u = padGradInput.slice(0..<n)
            backend.shortcutPadBackward(gradOutput: g, gradInput: u, stride: stride, channelOffset: offset)
            backend.axpy(alpha: 1, x: u, y: dx)
        } else if let dx {
            backend.axpy(alpha: 1, x: g, y: dx)
        }
        return dx
    }
}
