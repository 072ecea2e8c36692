import GPUTensor

// The layers of a trial group (TrialGroup.swift) that differ from a member's own: G members'
// convolutions as one (grouped) convolution, the flatten that turns the channel-stacked features
// into per-member rows, and the dense layers and their ReLUs as batched GEMMs.
//
// Legend: G members, N batch (the same images for every member), C / Cin / Cout channels of ONE
// member, F features of one member. Feature maps hold the members side by side in the channels,
// (N, G*C, H, W): member g owns channels g*C ..< (g+1)*C, so batch norm, ReLU and pooling (per
// channel or per element) are the member's own layers run on all of them at once. The head holds
// the members one after another, (G, N, F): member g's (N, F) rows are one matrix of a batched GEMM.
//
// Every parameter stacks the members along its first dimension, (G*Cout, ...) or (G*out, ...),
// so member g's tensor is the contiguous slice of rows g*Cout ..< (g+1)*Cout in every backend's
// storage (the CPU's OHWI weights included): exactly the shape and storage of the member's own
// parameter, which is what lets per-member optimizers and checkpoints work on views.

/// G members' `Conv2D` layers (same shapes) as one convolution. The first layer of the network
/// (`sharedInput`) reads the images all members see, as an ordinary convolution with G*Cout
/// filters; later layers read the members' own channels, as a grouped convolution with G groups.
///
/// Parameters: `weight` (G*Cout, Cin, K, K), `bias` (G*Cout), named as the members' parameters.
final class GroupConv2D: Layer {
    let name: String
    let members: Int
    let inChannels: Int      // per member
    let outChannels: Int     // per member
    let kernel: Int, stride: Int, padding: Int
    let sharedInput: Bool
    let weight: Parameter    // (G*Cout, Cin, K, K)
    let bias: Parameter?     // (G*Cout)
    var isFrozen = false

    private var backend: Backend!
    private var geometry: ConvGeometry!   // for maxBatch
    private var output: Tensor!           // (maxBatch, G*Cout, Ho, Wo)
    private var gradInput: Tensor?        // (maxBatch, G*Cin, H, W); none for shared input
    private var input: Tensor?

    init(member conv: Conv2D, members: Int, sharedInput: Bool) {
        name = conv.name
        self.members = members
        inChannels = conv.inChannels
        outChannels = conv.outChannels
        kernel = conv.kernel
        stride = conv.stride
        padding = conv.padding
        self.sharedInput = sharedInput
        // Values come from the members (TrialGroup packs them); the initializer is never used.
        weight = Parameter(name: conv.weight.name, shape: [members * outChannels, inChannels, kernel, kernel],
                           initializer: .constant(0))
        let rows = members * conv.outChannels
        bias = conv.bias.map { Parameter(name: $0.name, shape: [rows], initializer: .constant(0)) }
    }

    var ownParameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    private func geometry(batch: Int, input: [Int]) -> ConvGeometry {
        let cin = sharedInput ? inChannels : members * inChannels
        precondition(input.count == 3 && input[0] == cin, "\(name) (group of \(members)): expected (\(cin), H, W), got \(input)")
        return ConvGeometry(batch: batch, inChannels: cin, height: input[1], width: input[2],
                            outChannels: members * outChannels, kernel: kernel, stride: stride, padding: padding,
                            groups: sharedInput ? 1 : members)
    }

    func outputShape(input: [Int]) -> [Int] { Array(geometry(batch: 1, input: input).outputShape.dropFirst()) }

    func cost(input: [Int]) -> LayerCost {
        let f = geometry(batch: 1, input: input).flops
        return LayerCost(parameters: parameterCount, forward: f, backwardData: sharedInput ? 0 : f, backwardWeight: f)
    }

    func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        try allocateOwnState(on: backend)
        self.backend = backend
        let g = geometry(batch: maxBatch, input: input)
        geometry = g
        output = try backend.allocate(g.outputShape)
        gradInput = sharedInput ? nil : try backend.allocate(g.inputShape)
        self.input = nil
    }

    func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        checkBatch(x, Array(geometry.inputShape.dropFirst()), geometry.batch, name)
        let y = output.slice(0..<x.shape[0])
        backend.conv2dForward(geometry.withBatch(x.shape[0]), input: x, weight: weight.value, bias: bias?.value, output: y)
        input = x
        return y
    }

    func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let g = geometry.withBatch(x.shape[0])
        backend.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: weight.grad, mode: .overwrite)
        if let b = bias { backend.biasBackward(gradOutput: dy, gradBias: b.grad, mode: .overwrite) }
        guard computeInputGradient else { return nil }
        guard let gradInput else { preconditionFailure("\(name): the shared input of a group has no gradient") }
        let dx = gradInput.slice(0..<g.batch)
        backend.conv2dBackwardData(g, gradOutput: dy, weight: weight.value, gradInput: dx)
        return dx
    }
}

/// A tensor of `shape` over the first elements of `buffer`'s storage: the (G, n, F) head
/// activations of a batch of n <= maxBatch, laid out as G consecutive (n, F) matrices.
@inline(__always)
func leading(_ buffer: Tensor, _ shape: [Int]) -> Tensor {
    Tensor(storage: buffer.storage, offset: buffer.offset, shape: shape)
}

/// One layer of the head, on (G, N, F) activations: member g's rows are matrix g.
protocol GroupHeadLayer: AnyObject {
    var name: String { get }
    var parameters: [Parameter] { get }
    var outFeatures: Int { get }
    func prepare(maxBatch: Int, backend: Backend) throws
    func forward(_ x: Tensor, mode: ForwardMode) -> Tensor
    func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor?
}

/// (N, G*C, H, W) -> (G, N, C*H*W): each member's channels, flattened in PyTorch's (C, H, W)
/// order as the member's own `Flatten` does, so that the dense weights after it are the member's.
///
/// Made of backend calls only: the member's channel slice is cut out by shortcutPad's
/// adjoint (`shortcutPadBackward`, stride 1) and then flattened by `copy`. Backward puts each
/// member's gradient back into its channel slice with `shortcutPadForward` (zeros elsewhere) and
/// adds the slices; a channel-slice accumulate kernel would save those G-1 full-size additions.
final class GroupFlatten {
    let members: Int
    let channels: Int, height: Int, width: Int   // per member
    var features: Int { channels * height * width }

    private var backend: Backend!
    private var maxBatch = 0
    private var memberMap: Tensor!   // (maxBatch, C, H, W): one member's channels
    private var wide: Tensor!        // (maxBatch, G*C, H, W): one member's gradient in its slice
    private var output: Tensor!      // (G, maxBatch, F)
    private var gradInput: Tensor!   // (maxBatch, G*C, H, W)

    init(members: Int, memberShape: [Int]) {
        precondition(memberShape.count == 3, "GroupFlatten: expected (C, H, W), got \(memberShape)")
        self.members = members
        (channels, height, width) = (memberShape[0], memberShape[1], memberShape[2])
    }

    func prepare(maxBatch: Int, backend: Backend) throws {
        self.backend = backend
        self.maxBatch = maxBatch
        memberMap = try backend.allocate([maxBatch, channels, height, width])
        wide = members > 1 ? try backend.allocate([maxBatch, members * channels, height, width]) : nil
        output = try backend.allocate([members, maxBatch, features])
        gradInput = try backend.allocate([maxBatch, members * channels, height, width])
    }

    func forward(_ x: Tensor) -> Tensor {
        let n = x.shape[0]
        precondition(x.shape == [n, members * channels, height, width] && n <= maxBatch,
                     "GroupFlatten: got \(x.shape), prepared for (<= \(maxBatch), \(members * channels), \(height), \(width))")
        let y = leading(output, [members, n, features])
        let map = memberMap.slice(0..<n)
        for g in 0..<members {
            backend.shortcutPadBackward(gradOutput: x, gradInput: map, stride: 1, channelOffset: g * channels)
            backend.copy(map, to: batchedMatrix(y, g, [n, features]))
        }
        return y
    }

    func backward(_ dy: Tensor) -> Tensor {
        let n = dy.shape[1]
        let map = memberMap.slice(0..<n), dx = gradInput.slice(0..<n)
        for g in 0..<members {
            backend.copy(batchedMatrix(dy, g, [n, features]), to: map)
            if g == 0 {
                backend.shortcutPadForward(map, output: dx, stride: 1, channelOffset: 0)
            } else {
                let w = wide.slice(0..<n)
                backend.shortcutPadForward(map, output: w, stride: 1, channelOffset: g * channels)
                backend.add(dx, w, output: dx)
            }
        }
        return dx
    }
}

/// G members' `Dense` layers as batched GEMMs over (G, N, in) -> (G, N, out).
/// Parameters: `weight` (G*out, in), `bias` (G*out), named as the members'.
final class GroupDense: GroupHeadLayer {
    let name: String
    let members: Int
    let inFeatures: Int, outFeatures: Int   // per member
    let weight: Parameter   // (G*out, in): member g's (out, in) is rows g*out ..< (g+1)*out
    let bias: Parameter?    // (G*out)

    private var backend: Backend!
    private var maxBatch = 0
    private var output: Tensor!      // (G, maxBatch, out)
    private var gradInput: Tensor!   // (G, maxBatch, in)
    private var input: Tensor?       // (G, N, in)

    init(member dense: Dense, members: Int) {
        name = dense.name
        self.members = members
        inFeatures = dense.inFeatures
        outFeatures = dense.outFeatures
        weight = Parameter(name: dense.weight.name, shape: [members * outFeatures, inFeatures], initializer: .constant(0))
        let rows = members * dense.outFeatures
        bias = dense.bias.map { Parameter(name: $0.name, shape: [rows], initializer: .constant(0)) }
    }

    var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    func prepare(maxBatch: Int, backend: Backend) throws {
        for p in parameters { try p.allocate(on: backend) }
        self.backend = backend
        self.maxBatch = maxBatch
        output = try backend.allocate([members, maxBatch, outFeatures])
        gradInput = try backend.allocate([members, maxBatch, inFeatures])
        input = nil
    }

    func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        let n = x.shape[1]
        precondition(x.shape == [members, n, inFeatures] && n <= maxBatch, "\(name) (group): got \(x.shape)")
        let y = leading(output, [members, n, outFeatures])
        // y[g] (N, out) = x[g] (N, in) * W[g]^T (in, out)
        backend.gemmBatched(transposeA: false, transposeB: true, m: n, n: outFeatures, k: inFeatures, batch: members,
                            alpha: 1, a: x, b: weight.value, beta: 0, c: y)
        if let b = bias {
            for g in 0..<members {
                backend.addBias(batchedMatrix(y, g, [n, outFeatures]), bias: b.value.slice(g * outFeatures..<(g + 1) * outFeatures))
            }
        }
        input = x
        return y
    }

    func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let n = x.shape[1]
        // dW[g] (out, in) = dy[g]^T (out, N) * x[g] (N, in)
        backend.gemmBatched(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: n, batch: members,
                            alpha: 1, a: dy, b: x, beta: 0, c: weight.grad)
        if let b = bias {
            for g in 0..<members {
                backend.biasBackward(gradOutput: batchedMatrix(dy, g, [n, outFeatures]),
                                     gradBias: b.grad.slice(g * outFeatures..<(g + 1) * outFeatures), mode: .overwrite)
            }
        }
        guard computeInputGradient else { return nil }
        // dx[g] (N, in) = dy[g] (N, out) * W[g] (out, in)
        let dx = leading(gradInput, [members, n, inFeatures])
        backend.gemmBatched(transposeA: false, transposeB: false, m: n, n: inFeatures, k: outFeatures, batch: members,
                            alpha: 1, a: dy, b: weight.value, beta: 0, c: dx)
        return dx
    }
}

/// The members' ReLUs after a dense layer: elementwise, in place on (G, N, F), as the members'
/// in-place `ReLU` layers.
final class GroupHeadReLU: GroupHeadLayer {
    let name: String
    let outFeatures: Int
    private var backend: Backend!
    private var lastOutput: Tensor?

    init(name: String, features: Int) {
        self.name = name
        outFeatures = features
    }

    var parameters: [Parameter] { [] }

    func prepare(maxBatch: Int, backend: Backend) throws { self.backend = backend }

    func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        backend.reluForward(x, output: x)
        lastOutput = x
        return x
    }

    func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard computeInputGradient else { return nil }
        guard let y = lastOutput else { preconditionFailure("ReLU \(name): backward before forward") }
        backend.reluBackward(output: y, gradOutput: dy, gradInput: dy)
        return dy
    }
}
