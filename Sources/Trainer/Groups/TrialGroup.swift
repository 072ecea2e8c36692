import GPUTensor

// Trial groups: G trials whose networks have the same layer shapes and batch size train as one
// fused network on one backend (HFTA, Wang et al., MLSys 2021, "horizontal fusion"): convolutions
// as one grouped convolution, dense layers as batched GEMMs, batch norm, ReLU and pooling per
// channel as they are, one softmax cross-entropy per member (their sum is the loss, so every
// member's gradients are its own), and one optimizer per member (its own lr, weight decay,
// momentum, even kind) stepping the member's slice of each parameter. Layouts: GroupLayers.swift.
//
// A member stays a trial of its own: its `Model` and `Optimizer` are the ones a lone run would
// use. The group copies the model's tensors in when it is formed (`init`) and back out on
// `extract`, so checkpoints, metrics and evaluation go through the member's usual objects; the
// optimizer's state lives on the member's `Optimizer`, keyed by the member's parameter names, and
// is stepped in place on views of the group's tensors. Leaving (`removing`) re-packs the others.
//
// What groups (`TrialGroup.key` / `GroupingRule`): the same model spec and batch size AND the same
// seed and data settings, because one seed drives a run's split, shuffle and augmentation: members
// see the same batches, which is only the batches each would see alone when their seeds agree.
// Trials with different seeds are not grouped (each trains alone or with its own seed's mates).
//
// Frozen prefixes: members that reuse the same donor's frozen prefix (equal values, checked) share
// it: it runs once, as the lone run's frozen layers (inference mode, no backward), and the first
// trainable convolution reads its output as the shared input; steps can start from that output
// (`afterSharedPrefix`), so the donor's activation cache serves the whole group. A group is
// all-frozen-prefix-of-k or none (the prefix length is part of the layer signature).
//
// Not grouped (a clear `GroupError` names the layer): dropout (its mask stream is per member),
// residual blocks, global average pooling, batch norm after a dense layer, and a frozen prefix
// that reaches the dense layers.

/// Why models cannot train as one group.
public struct GroupError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "trial group: " + message }
}

/// One trial in a group: the model and optimizer it would train with alone.
public struct GroupMember {
    /// The trial's identifier (for messages and the journal).
    public var id: String
    /// Prepared and initialised (or loaded) on the group's backend; any `maxBatch` (1 suffices).
    public var model: Model
    public var optimizer: Optimizer

    public init(id: String, model: Model, optimizer: Optimizer) {
        self.id = id
        self.model = model
        self.optimizer = optimizer
    }
}

/// What one fused training step leaves for the caller, per member (views, valid until the next step).
public struct GroupStep {
    /// Member g's per-image losses (N).
    public let losses: [Tensor]
    /// Member g's logits (N, K).
    public let logits: [Tensor]
}

/// G same-shaped trials trained as one fused network.
///
/// ```swift
/// let group = try TrialGroup(members: [a, b, c], backend: backend, maxBatch: 32)
/// let step = try group.trainStep(images: x, labels: y, learningRates: [0.1, 0.03, 0.01])
/// // step.losses[g]: member g's per-image losses, as its lone run would compute them
/// group.extract(member: 1)             // member 1's weights and BN statistics -> its Model
/// let rest = try group.removing([0])   // member 0 pruned: the others go on
/// ```
public final class TrialGroup {
    public private(set) var members: [GroupMember]
    public let backend: Backend
    public let maxBatch: Int
    public var size: Int { members.count }

    /// Per-member image shape (C, H, W) and class count.
    public let inputShape: [Int]
    public let classes: Int

    let features: [any Layer]          // on (N, G*C, H, W)
    let flatten: GroupFlatten
    let head: [any GroupHeadLayer]     // on (G, N, F)

    private let labels: Tensor         // (G*maxBatch): the batch's labels once per member
    private let losses: Tensor         // (G*maxBatch)
    private let gradLogits: Tensor     // (G*maxBatch*K)
    /// Names of the frozen prefix's tensors: one copy shared by all members, not stacked.
    private var sharedNames: Set<String> = []
    /// Per member, `(name, value, grad)` views for its optimizer, in the member's parameter order.
    private var memberTrainables: [[(name: String, value: Tensor, grad: Tensor)]] = []

    /// Forms the group: checks that the members' networks have the same layers and shapes,
    /// builds the fused network for batches of up to `maxBatch`, and copies each member's
    /// parameters and buffers into its slices.
    public init(members: [GroupMember], backend: Backend, maxBatch: Int) throws {
        guard let first = members.first else { throw GroupError("a group needs at least one member") }
        precondition(maxBatch > 0)
        let g = members.count
        let plan = try Self.plan(first.model)
        for m in members.dropFirst() {
            let other = try Self.plan(m.model)
            guard other.signature == plan.signature && m.model.inputShape == first.model.inputShape else {
                throw GroupError("\(m.id) differs from \(first.id) in its layers or shapes")
            }
        }
        for m in members {
            guard m.model.backend === backend else { throw GroupError("\(m.id): model is not prepared on the group's backend") }
        }
        try Self.checkSharedPrefix(members, plan: plan, backend: backend)
        self.members = members
        self.backend = backend
        self.maxBatch = maxBatch
        inputShape = first.model.inputShape
        classes = first.model.outputShape[0]

        // Build the fused layers from the first member's.
        var features: [any Layer] = []
        var shape = inputShape
        for (i, layer) in plan.features.enumerated() {
            let fused: any Layer
            let prefix = i < plan.frozenCount, copies = prefix ? 1 : g
            switch layer {
            case let c as Conv2D where prefix:
                fused = Conv2D(name: c.name, inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel,
                               stride: c.stride, padding: c.padding, bias: c.bias != nil)
            case let c as Conv2D: fused = GroupConv2D(member: c, members: g, sharedInput: i == plan.firstConv)
            case let b as BatchNorm2D:
                fused = BatchNorm2D(name: b.name, channels: copies * b.channels, momentum: b.momentum, epsilon: b.epsilon)
            case let r as ReLU: fused = ReLU(name: r.name, inPlace: r.inPlace)
            case let p as MaxPool2D: fused = MaxPool2D(name: p.name, window: p.window, stride: p.stride, padding: p.padding)
            case let p as AvgPool2D: fused = AvgPool2D(name: p.name, window: p.window, stride: p.stride, padding: p.padding)
            default: preconditionFailure("plan admitted \(type(of: layer))")
            }
            if prefix { fused.setFrozen(true) }
            features.append(fused)
            shape = layer.outputShape(input: shape)   // the member's shape
        }
        self.features = features
        sharedNames = Set(features[..<plan.frozenCount].flatMap { $0.parameters.map(\.name) + $0.buffers.map(\.name) })
        flatten = GroupFlatten(members: g, memberShape: shape)
        var head: [any GroupHeadLayer] = []
        var width = flatten.features
        for layer in plan.head {
            switch layer {
            case let d as Dense:
                head.append(GroupDense(member: d, members: g))
                width = d.outFeatures
            case let r as ReLU:
                head.append(GroupHeadReLU(name: r.name, features: width))
            default: preconditionFailure("plan admitted \(type(of: layer))")
            }
        }
        self.head = head

        var fusedInput = inputShape
        try prepareChain(features, input: fusedInput, maxBatch: maxBatch, backend: backend)
        fusedInput = outputShapeChain(features, input: fusedInput)
        precondition(fusedInput == [g * shape[0], shape[1], shape[2]], "group features end in \(fusedInput)")
        try flatten.prepare(maxBatch: maxBatch, backend: backend)
        for h in head { try h.prepare(maxBatch: maxBatch, backend: backend) }
        labels = try backend.allocate([g * maxBatch])
        losses = try backend.allocate([g * maxBatch])
        gradLogits = try backend.allocate([g * maxBatch * classes])

        for (i, m) in members.enumerated() { pack(m.model, into: i) }
        memberTrainables = (0..<g).map { i in
            groupParameters.filter { !$0.isFrozen }.map { (name: $0.name, value: memberSlice($0.value, i), grad: memberSlice($0.grad, i)) }
        }
    }

    // MARK: The member <-> group mapping

    /// The fused network's parameters, in the members' `named_parameters()` order (same names).
    var groupParameters: [Parameter] { features.flatMap { $0.parameters } + head.flatMap { $0.parameters } }
    /// The fused network's buffers (batch norm running statistics), same names as the members'.
    var groupBuffers: [NamedBuffer] { features.flatMap { $0.buffers } }

    /// Leaves of the frozen prefix the members share (run once for all of them).
    public var sharedPrefixLayers: Int { features.prefix { $0.isFrozen }.count }

    /// Member g's rows of a tensor that stacks the members along its first dimension.
    func memberSlice(_ t: Tensor, _ g: Int) -> Tensor {
        let rows = t.shape[0] / size
        return t.slice(g * rows..<(g + 1) * rows)
    }

    /// Member g's state dict (parameters and running statistics) under its PyTorch names, as views
    /// of the group's tensors with the member's own shapes (valid until the group changes).
    public func memberStateDict(_ g: Int) -> [(name: String, tensor: Tensor)] {
        func view(_ name: String, _ t: Tensor) -> Tensor { sharedNames.contains(name) ? t : memberSlice(t, g) }
        return groupParameters.map { ($0.name, view($0.name, $0.value)) } + groupBuffers.map { ($0.name, view($0.name, $0.value)) }
    }

    private func pack(_ model: Model, into g: Int) {
        let theirs = Dictionary(model.stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (name, slice) in memberStateDict(g) {
            guard let t = theirs[name] else { preconditionFailure("member has no \(name)") }
            backend.copy(t, to: slice)
        }
    }

    /// Copies member g's parameters and running statistics into its `Model` (for a checkpoint,
    /// an evaluation alone, or leaving the group). Its optimizer state is already its own.
    public func extract(member g: Int) {
        let mine = Dictionary(memberStateDict(g).map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (name, tensor) in members[g].model.stateDict {
            guard let slice = mine[name] else { preconditionFailure("group has no \(name)") }
            backend.copy(slice, to: tensor)
        }
    }

    /// The group without the members at `indices` (pruned, diverged or finished): the others'
    /// state is extracted and packed into a new, smaller group; their optimizers carry over.
    /// Throws when no member would remain.
    public func removing(_ indices: Set<Int>) throws -> TrialGroup {
        let keep = members.indices.filter { !indices.contains($0) }
        guard !keep.isEmpty else { throw GroupError("removing every member leaves no group") }
        for g in keep { extract(member: g) }
        return try TrialGroup(members: keep.map { members[$0] }, backend: backend, maxBatch: maxBatch)
    }

    // MARK: Running

    /// x: (N, C, H, W) images every member sees, N <= maxBatch. Returns the logits (G, N, K):
    /// member g's (N, K) is matrix g (`batchedMatrix(logits, g, [N, K])`).
    /// With `afterSharedPrefix`, x is instead the shared frozen prefix's output for those images
    /// (`forwardSharedPrefix`, e.g. from the prefix's activation cache), and the prefix is skipped.
    public func forward(_ x: Tensor, mode: ForwardMode, afterSharedPrefix: Bool = false) -> Tensor {
        let skip = afterSharedPrefix ? sharedPrefixLayers : 0
        let expected = outputShapeChain(Array(features[..<skip]), input: inputShape)
        precondition(x.rank == 4 && Array(x.shape.dropFirst()) == expected && x.shape[0] <= maxBatch,
                     "TrialGroup.forward: got \(x.shape), prepared for (<= \(maxBatch)) x \(expected)")
        var h = flatten.forward(forwardChain(Array(features[skip...]), x, mode: mode))
        for layer in head { h = layer.forward(h, mode: mode) }
        return h
    }

    /// The shared frozen prefix's output for images x (N, C, H, W): what an activation cache of
    /// the donor's prefix holds, computed once for all members. x itself when there is no prefix.
    public func forwardSharedPrefix(_ x: Tensor) -> Tensor {
        forwardChain(Array(features[..<sharedPrefixLayers]), x, mode: .inference)
    }

    /// One training step of every member on the same batch: forward, one mean softmax
    /// cross-entropy per member (the gradients of the summed loss are each member's own),
    /// backward, and each member's optimizer with its learning rate `learningRates[g]`.
    /// labels: (N) class indices.
    /// With `afterSharedPrefix`, x is the shared frozen prefix's output (see `forward`).
    public func trainStep(images x: Tensor, labels y: Tensor, learningRates: [Float],
                          afterSharedPrefix: Bool = false) throws -> GroupStep {
        precondition(learningRates.count == size, "trainStep: \(learningRates.count) learning rates for \(size) members")
        let n = x.shape[0], g = size
        let logits = forward(x, mode: .training, afterSharedPrefix: afterSharedPrefix)
        let stackedLabels = leading(labels, [g * n])
        for i in 0..<g { backend.copy(y, to: stackedLabels.slice(i * n..<(i + 1) * n)) }
        let l = leading(losses, [g * n]), dLogits = leading(gradLogits, [g, n, classes])
        backend.softmaxCrossEntropy(logits: leading(logits, [g * n, classes]), labels: stackedLabels, losses: l,
                                    gradLogits: leading(dLogits, [g * n, classes]), gradScale: 1 / Float(n))
        backward(dLogits)
        for i in 0..<g {
            try members[i].optimizer.step(memberTrainables[i], learningRate: learningRates[i])
        }
        return GroupStep(losses: (0..<g).map { l.slice($0 * n..<($0 + 1) * n) },
                         logits: (0..<g).map { batchedMatrix(logits, $0, [n, classes]) })
    }

    /// Backpropagates dL/dlogits (G, N, K) of the last forward; overwrites every gradient.
    func backward(_ gradLogits: Tensor) {
        var d = gradLogits
        for layer in head.reversed() {
            guard let dx = layer.backward(d, computeInputGradient: true) else { preconditionFailure("\(layer.name): no gradient") }
            d = dx
        }
        _ = backwardChain(features, flatten.backward(d), computeInputGradient: false)
    }

    // MARK: Which networks can be grouped

    /// A member's leaf layers split at its `Flatten`, with a description of every layer's
    /// hyperparameters and shapes (equal for members that can share a group).
    struct Plan {
        var features: [any Layer]
        var head: [any Layer]
        /// The first trainable convolution: it reads the input every member shares.
        var firstConv: Int
        /// Leading frozen leaves (a reused prefix), run once for all members.
        var frozenCount: Int
        var signature: [String]
    }

    /// Members with a frozen prefix must share one: the same values (the same donor), since the
    /// group runs the prefix once with member 0's tensors.
    static func checkSharedPrefix(_ members: [GroupMember], plan: Plan, backend: Backend) throws {
        guard plan.frozenCount > 0, let first = members.first else { return }
        let prefixNames = Set(plan.features[..<plan.frozenCount].flatMap { $0.parameters.map(\.name) + $0.buffers.map(\.name) })
        let reference = first.model.stateDict.filter { prefixNames.contains($0.name) }
        for m in members.dropFirst() {
            let theirs = Dictionary(m.model.stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
            for (name, tensor) in reference {
                guard let t = theirs[name], try backend.download(t) == backend.download(tensor) else {
                    throw GroupError("\(m.id): its frozen \(name) differs from \(first.id)'s (members must share one donor's prefix)")
                }
            }
        }
    }

    static func plan(_ model: Model) throws -> Plan {
        func leaves(_ l: any Layer) -> [any Layer] {
            if let s = l as? Sequential { return s.layers.flatMap(leaves) }
            return [l]
        }
        let all = model.layers.flatMap(leaves)
        guard let f = all.firstIndex(where: { $0 is Flatten }) else {
            throw GroupError("the network has no Flatten before its dense layers (only conv/pool stacks + dense heads are grouped)")
        }
        var signature: [String] = []
        var firstConv = -1
        let frozenCount = all.prefix { $0.isFrozen }.count
        guard all.dropFirst(frozenCount).allSatisfy({ !$0.isFrozen }) else {
            throw GroupError("frozen layers after trainable ones cannot be grouped")
        }
        guard frozenCount < f else { throw GroupError("a frozen prefix that reaches the dense layers cannot be grouped") }
        var shape = model.inputShape
        for (i, layer) in all.enumerated() {
            let name = layer.name.isEmpty ? String(describing: type(of: layer)) : layer.name
            let text: String
            switch layer {
            case let c as Conv2D where i < f:
                if firstConv < 0 && i >= frozenCount { firstConv = i }
                text = "conv \(c.inChannels)->\(c.outChannels) k\(c.kernel) s\(c.stride) p\(c.padding) bias \(c.bias != nil)"
            case let b as BatchNorm2D where i < f && shape.count == 3:
                text = "bn \(b.channels) m\(b.momentum) e\(b.epsilon)"
            case let r as ReLU: text = "relu \(r.inPlace)"
            case let p as MaxPool2D where i < f: text = "maxpool \(p.window)/\(p.stride) p\(p.padding)"
            case let p as AvgPool2D where i < f: text = "avgpool \(p.window)/\(p.stride) p\(p.padding)"
            case is Flatten where i == f: text = "flatten"
            case let d as Dense where i > f: text = "dense \(d.inFeatures)->\(d.outFeatures) bias \(d.bias != nil)"
            default:
                throw GroupError("\(type(of: layer)) '\(name)' cannot be grouped (conv, batch norm, ReLU, pooling, "
                                 + "flatten and dense layers can)")
            }
            signature.append("\(name) \(text) on \(shape)\(i < frozenCount ? " frozen" : "")")
            shape = layer.outputShape(input: shape)
        }
        guard firstConv == frozenCount else {
            throw GroupError("the network (after its frozen prefix) must start with a convolution")
        }
        guard all.last is Dense else { throw GroupError("the network must end with a dense layer") }
        return Plan(features: Array(all[..<f]), head: Array(all[(f + 1)...]), firstConv: firstConv, frozenCount: frozenCount,
                    signature: signature)
    }
}
