import GPUTensor

/// A group of consecutive blocks: the unit of freezing, reuse and growth.
public struct Stage: Hashable, Sendable {
    public var name: String
    /// Indices into `Model.blocks`.
    public var blocks: Range<Int>
}

/// Per-image work of one training step, split into what runs and what freezing skips
/// (relative to training the whole model; the first layer's input gradient is never counted).
public struct StepCost: Hashable, Sendable {
    public var performed: LayerCost
    public var skipped: LayerCost
}

/// A CNN as a list of named blocks grouped into stages, plus a classifier.
///
/// ```swift
/// let model = try Model(spec: ModelZoo.spec("resnet20"))   // structure only: names, counts, FLOPs
/// try model.prepare(on: backend, maxBatch: 128)            // parameters + activation buffers, once
/// model.initialize(seed: 42)
/// model.freezeStages(upTo: 2)                              // optional frozen prefix
/// let logits = model.forward(images, mode: .training)      // (N, K), N <= 128
/// backend.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses,
///                             gradLogits: dLogits, gradScale: 1 / Float(n))
/// model.backward(dLogits)                                  // overwrites trainable .grad
/// try optimizer.step(model.trainableTensors, learningRate: lr)
/// ```
public final class Model {
    /// The configuration this model was built from (nil for hand-assembled models).
    public let spec: ModelSpec?
    /// Per-image input shape (C, H, W).
    public let inputShape: [Int]
    /// Feature blocks in forward order (ResNet: stem, layer1.0, ...; VGG: conv-bn-relu units).
    public let blocks: [any Layer]
    public let stages: [Stage]
    /// Layers after the last block (ResNet: global average pool, fc).
    public let classifier: [any Layer]

    public private(set) var backend: Backend?
    public private(set) var maxBatch = 0

    /// Assembles a model from stages of blocks and a classifier.
    public init(inputShape: [Int], stages: [(name: String, blocks: [any Layer])], classifier: [any Layer],
                spec: ModelSpec? = nil) {
        self.spec = spec
        self.inputShape = inputShape
        var blocks: [any Layer] = []
        var ranges: [Stage] = []
        for s in stages {
            ranges.append(Stage(name: s.name, blocks: blocks.count..<blocks.count + s.blocks.count))
            blocks += s.blocks
        }
        self.blocks = blocks
        self.stages = ranges
        self.classifier = classifier
        _ = outputShape   // checks that the shapes chain
    }

    /// Builds the model `spec` describes; throws `ModelSpecError` for an invalid configuration.
    public convenience init(spec: ModelSpec) throws {
        let built = try ModelBuilder.build(spec)
        self.init(inputShape: spec.input.dims, stages: built.stages, classifier: built.classifier, spec: spec)
    }

    /// Blocks then classifier, in forward order.
    public var layers: [any Layer] { blocks + classifier }

    /// Per-image output shape, (K).
    public var outputShape: [Int] { outputShapeChain(layers, input: inputShape) }

    // MARK: Parameters and state

    /// All parameters in PyTorch `named_parameters()` order.
    public var parameters: [Parameter] { layers.flatMap { $0.parameters } }
    /// The parameters an optimizer updates.
    public var trainableParameters: [Parameter] { parameters.filter { !$0.isFrozen } }
    public var buffers: [NamedBuffer] { layers.flatMap { $0.buffers } }
    /// PyTorch `state_dict()` keys and tensors (parameters and running statistics). After `prepare`.
    public var stateDict: [(name: String, tensor: Tensor)] { layers.flatMap { $0.stateDict } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
    public var trainableParameterCount: Int { trainableParameters.reduce(0) { $0 + $1.count } }

    /// What `Optimizer.step` takes: the trainable parameters with their gradients.
    public var trainableTensors: [(name: String, value: Tensor, grad: Tensor)] {
        trainableParameters.map { ($0.name, $0.value, $0.grad) }
    }

    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }

    // MARK: Accounting (per image)

    /// Parameters and FLOPs of every phase for one image (see `LayerCost` for the convention).
    public var cost: LayerCost { costChain(layers, input: inputShape) }

    /// Per-image input shape of each block, then of the classifier.
    public var blockInputShapes: [[Int]] {
        var shapes: [[Int]] = []
        var s = inputShape
        for b in blocks {
            shapes.append(s)
            s = b.outputShape(input: s)
        }
        return shapes + [s]
    }

    public var blockCosts: [LayerCost] {
        let shapes = blockInputShapes
        return blocks.indices.map { blocks[$0].cost(input: shapes[$0]) }
    }

    public var classifierCost: LayerCost { costChain(classifier, input: blockInputShapes.last!) }

    public func cost(stage i: Int) -> LayerCost {
        let c = blockCosts
        return stages[i].blocks.reduce(LayerCost.zero) { $0 + c[$1] }
    }

    /// What one image costs in a training step with the current freezing.
    public var stepCost: StepCost {
        let performed = stepCostChain(layers, input: inputShape, computeInputGradient: false, ignoreFreezing: false)
        let full = stepCostChain(layers, input: inputShape, computeInputGradient: false, ignoreFreezing: true)
        return StepCost(performed: performed,
                        skipped: LayerCost(forward: full.forward - performed.forward,
                                           backwardData: full.backwardData - performed.backwardData,
                                           backwardWeight: full.backwardWeight - performed.backwardWeight))
    }

    // MARK: Freezing

    /// Makes exactly the first `k` stages frozen (the frozen prefix) and the rest trainable.
    public func freezeStages(upTo k: Int) {
        precondition(k >= 0 && k <= stages.count, "freezeStages(upTo: \(k)) with \(stages.count) stages")
        freezePrefix(blocks: k == 0 ? 0 : stages[k - 1].blocks.upperBound)
    }

    /// Makes exactly the first `count` blocks frozen and the rest (and the classifier) trainable.
    public func freezePrefix(blocks count: Int) {
        precondition(count >= 0 && count <= blocks.count, "freezePrefix(blocks: \(count)) with \(blocks.count) blocks")
        for (i, b) in blocks.enumerated() { b.setFrozen(i < count) }
        for l in classifier { l.setFrozen(false) }
    }

    /// The number of leading frozen blocks.
    public var frozenBlockCount: Int { blocks.firstIndex { !$0.isFrozen } ?? blocks.count }

    // MARK: Running

    /// Allocates parameters and buffers (zeros, first call only) and the activation and gradient
    /// buffers for batches of up to `maxBatch` images. Call again to change `maxBatch`.
    public func prepare(on backend: Backend, maxBatch: Int) throws {
        precondition(maxBatch > 0)
        if let b = self.backend { precondition(b === backend, "Model.prepare on a second backend") }
        try prepareChain(layers, input: inputShape, maxBatch: maxBatch, backend: backend)
        self.backend = backend
        self.maxBatch = maxBatch
    }

    /// He-normal conv/dense weights, zero biases, BN gamma 1 and beta 0, running mean 0 and var 1;
    /// each tensor from Philox stream `(seed, fnv1a(name))`. Seeds the dropout layers too.
    public func initialize(seed: UInt64) {
        guard let backend else { preconditionFailure("Model.initialize before prepare(on:maxBatch:)") }
        for p in parameters { p.initialize(seed: seed, backend: backend) }
        for b in buffers { b.initialize(seed: seed, backend: backend) }
        for d in dropoutLayers {
            d.seed = seed
            d.counter = 0
        }
    }

    /// x: (N, C, H, W) with N <= maxBatch. Returns the logits (N, K), a view of a buffer that
    /// stays valid until the next forward. Frozen layers run in inference mode whatever `mode` is.
    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor {
        precondition(backend != nil, "Model.forward before prepare(on:maxBatch:)")
        precondition(x.rank == 4 && Array(x.shape.dropFirst()) == inputShape && x.shape[0] <= maxBatch,
                     "Model.forward: got \(x.shape), prepared for (<= \(maxBatch)) x \(inputShape)")
        return forwardChain(layers, x, mode: mode)
    }

    /// Backpropagates dL/dlogits (N, K) of the last forward down to the first trainable layer,
    /// which gets `computeInputGradient: false`; overwrites the gradients of trainable parameters.
    /// With `computeInputGradient` it goes through to the input and returns dL/dx (N, C, H, W).
    @discardableResult
    public func backward(_ gradLogits: Tensor, computeInputGradient: Bool = false) -> Tensor? {
        backwardChain(layers, gradLogits, computeInputGradient: computeInputGradient)
    }

    // MARK: Dropout state

    var dropoutLayers: [Dropout] {
        var out: [Dropout] = []
        func walk(_ l: any Layer) {
            if let d = l as? Dropout { out.append(d) }
            l.children.forEach(walk)
        }
        layers.forEach(walk)
        return out
    }

    /// Training forwards seen by the dropout layers (their Philox counter); save and restore it
    /// with the RNG state of a checkpoint.
    public var dropoutCounter: UInt64 {
        get { dropoutLayers.first?.counter ?? 0 }
        set { for d in dropoutLayers { d.counter = newValue } }
    }

    // MARK: Summary

    /// One line per stage: name, blocks, output shape, parameters, forward FLOPs per image.
    public var summary: String {
        let shapes = blockInputShapes
        let costs = blockCosts
        var lines: [String] = []
        for s in stages {
            let c = s.blocks.reduce(LayerCost.zero) { $0 + costs[$1] }
            let out = s.blocks.isEmpty ? shapes[s.blocks.lowerBound] : shapes[s.blocks.upperBound]
            let frozen = s.blocks.allSatisfy { blocks[$0].isFrozen } && !s.blocks.isEmpty ? " frozen" : ""
            lines.append("\(s.name): \(plural(s.blocks.count, "block")) -> \(out), \(c.parameters) params, "
                         + "\(formatCount(c.forward))FLOP\(frozen)")
        }
        let c = classifierCost
        lines.append("classifier -> \(outputShape), \(c.parameters) params, \(formatCount(c.forward))FLOP")
        let t = cost
        lines.append("total \(t.parameters) params (\(trainableParameterCount) trainable), "
                     + "\(formatCount(t.forward))FLOP forward per image")
        return lines.joined(separator: "\n")
    }
}
