import GPUTensor

// The layer contract shared by every file in Layers/.
//
// Shapes: a layer is described by per-image shapes (C, H, W) for images or (F) for features;
// tensors at run time carry a leading batch dimension N <= the maxBatch given to `prepare`.
// Legend used in the comments: N batch, C channels, H x W spatial size, F features, K classes.

/// Whether batch norm uses batch statistics (and updates its running ones) and dropout drops.
public enum ForwardMode: Sendable {
    case training
    case inference
}

/// How a parameter or buffer is initialised by `initialize(seed:)`.
public enum Initializer: Hashable, Sendable {
    /// He/Kaiming normal, std = sqrt(2 / fanIn) (He et al. 2015, as used for the incremental paper).
    case heNormal(fanIn: Int)
    case constant(Float)
}

/// A trainable tensor with its PyTorch name, its gradient and whether it is frozen.
///
/// Parameters are described when a layer is built (name, shape, initializer) and get memory the
/// first time the layer is prepared on a backend, so a model can be counted without allocating.
public final class Parameter {
    /// Full PyTorch state-dict key, e.g. `layer1.0.conv1.weight`.
    public let name: String
    public let shape: [Int]
    public let initializer: Initializer
    /// A frozen parameter gets no gradient written and should get no optimizer state.
    public var isFrozen = false
    private var tensors: (value: Tensor, grad: Tensor)?

    public init(name: String, shape: [Int], initializer: Initializer) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
    }

    public var count: Int { shape.reduce(1, *) }
    public var isAllocated: Bool { tensors != nil }

    /// The values (`shape`). Only after the owning model or layer was prepared.
    public var value: Tensor {
        guard let t = tensors else { preconditionFailure("parameter \(name) used before prepare(on:)") }
        return t.value
    }

    /// The gradient (`shape`), overwritten by each backward that reaches this parameter while it
    /// is trainable. Left untouched while frozen.
    public var grad: Tensor {
        guard let t = tensors else { preconditionFailure("gradient of \(name) used before prepare(on:)") }
        return t.grad
    }

    /// Allocates value and gradient (zeros) on `backend`, once; later calls on the same device keep them.
    public func allocate(on backend: Backend) throws {
        if let t = tensors, t.value.device == backend.device { return }
        tensors = (try backend.allocate(shape), try backend.allocate(shape))
    }

    /// Fills the value from `initializer`; the random stream is `(seed, fnv1a(name))`, so a tensor's
    /// initial value depends only on the seed and its name, not on the rest of the model.
    public func initialize(seed: UInt64, backend: Backend) {
        initializeTensor(value, initializer, name: name, seed: seed, backend: backend)
    }
}

/// A non-trainable tensor that is part of the model state (batch norm running statistics).
public final class NamedBuffer {
    /// Full PyTorch state-dict key, e.g. `layer1.0.bn1.running_mean`.
    public let name: String
    public let shape: [Int]
    public let initializer: Initializer
    private var tensor: Tensor?

    public init(name: String, shape: [Int], initializer: Initializer) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
    }

    public var count: Int { shape.reduce(1, *) }

    public var value: Tensor {
        guard let t = tensor else { preconditionFailure("buffer \(name) used before prepare(on:)") }
        return t
    }

    public func allocate(on backend: Backend) throws {
        if let t = tensor, t.device == backend.device { return }
        tensor = try backend.allocate(shape)
    }

    public func initialize(seed: UInt64, backend: Backend) {
        initializeTensor(value, initializer, name: name, seed: seed, backend: backend)
    }
}

private func initializeTensor(_ t: Tensor, _ initializer: Initializer, name: String, seed: UInt64, backend: Backend) {
    switch initializer {
    case .heNormal(let fanIn): backend.fillHeNormal(t, fanIn: fanIn, seed: seed, counter: fnv1a64(name))
    case .constant(let v): backend.fill(t, value: v)
    }
}

/// 64-bit FNV-1a of the UTF-8 bytes: a stable (process- and platform-independent) name hash.
/// Swift's `hashValue` is seeded per process, so it cannot be used for reproducible streams.
public func fnv1a64(_ text: String) -> UInt64 { fnv1a64(bytes: text.utf8) }

/// 64-bit FNV-1a of `bytes`, continuing from `hash` (so several pieces hash as their concatenation).
public func fnv1a64<S: Sequence>(bytes: S, continuing hash: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where S.Element == UInt8 {
    var h = hash
    for byte in bytes {
        h ^= UInt64(byte)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}

/// Work of one image through a layer, per phase, for the FLOP ledger.
///
/// Convention: a multiply-add counts 2 FLOPs, and only convolutions and dense layers (the GEMM-shaped
/// work) are counted. Bias additions, batch norm, activations, pooling and residual additions are
/// memory-bound and below 1% of the total for these models; they count 0.
/// `backwardData` is the work to produce the input gradient (skipped for the first trainable
/// layer); `backwardWeight` the work for weight gradients (skipped for frozen layers).
public struct LayerCost: Hashable, Sendable, CustomStringConvertible {
    public var parameters: Int
    public var forward: Double
    public var backwardData: Double
    public var backwardWeight: Double

    public init(parameters: Int = 0, forward: Double = 0, backwardData: Double = 0, backwardWeight: Double = 0) {
        self.parameters = parameters
        self.forward = forward
        self.backwardData = backwardData
        self.backwardWeight = backwardWeight
    }

    public static let zero = LayerCost()

    public static func + (a: LayerCost, b: LayerCost) -> LayerCost {
        LayerCost(parameters: a.parameters + b.parameters, forward: a.forward + b.forward,
                  backwardData: a.backwardData + b.backwardData, backwardWeight: a.backwardWeight + b.backwardWeight)
    }

    public static func += (a: inout LayerCost, b: LayerCost) { a = a + b }

    public var description: String {
        "params \(parameters), fwd \(forward), bwd-data \(backwardData), bwd-weight \(backwardWeight) FLOPs"
    }
}

/// A network layer with a hand-written backward (see docs/ARCHITECTURE.md, decision 1).
///
/// Life cycle: build (names and shapes only) -> `prepare` (allocates parameters once, and the
/// output and input-gradient buffers for `maxBatch`) -> any number of `forward` / `backward`
/// pairs with batches of at most `maxBatch` (smaller batches use `.slice(0..<n)` views of the
/// same buffers, so a steady-state step allocates nothing).
///
/// Buffer ownership: `forward` returns a view of a buffer the layer owns (or, for in-place and
/// reshaping layers, of its input); it stays valid until the layer's next `forward`. Layers keep
/// a reference to their input for backward, so the caller must not modify it in between, except
/// through an in-place `ReLU` (no layer's backward reads its own output but `MaxPool2D` and `ReLU`).
/// `backward` may overwrite `dy`.
public protocol Layer: AnyObject {
    /// The PyTorch module path (`layer1.0.conv1`); "" for containers whose children carry names.
    var name: String { get }
    /// This layer's own parameters (not its children's), in PyTorch registration order.
    var ownParameters: [Parameter] { get }
    /// This layer's own buffers, in PyTorch registration order.
    var ownBuffers: [NamedBuffer] { get }
    /// Sub-layers, in forward order as far as there is one (containers only).
    var children: [any Layer] { get }
    /// A frozen layer writes no parameter gradients and runs forward in inference mode (batch norm
    /// uses running statistics, dropout is the identity), so its output is a deterministic function
    /// of its input. Set through `setFrozen(_:)` so children and parameters follow.
    var isFrozen: Bool { get set }

    /// The per-image output shape for a per-image input shape; a precondition checks the input.
    func outputShape(input: [Int]) -> [Int]
    /// Parameters and FLOPs of one image (see `LayerCost` for the convention).
    func cost(input: [Int]) -> LayerCost
    /// Allocates parameters (first call only) and the activation/gradient buffers for
    /// batches of up to `maxBatch` images of per-image shape `input`.
    func prepare(input: [Int], maxBatch: Int, backend: Backend) throws
    /// x: (N, input...) with N <= maxBatch. Returns (N, output...).
    func forward(_ x: Tensor, mode: ForwardMode) -> Tensor
    /// dy: (N, output...) for the batch of the last forward. Overwrites the gradients of trainable
    /// parameters (frozen ones are not touched); returns dx (N, input...) when
    /// `computeInputGradient`, else nil without computing it.
    func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor?
    /// The work one image costs in a training step run through `backward(_:computeInputGradient:)`
    /// with the current freezing (or as if nothing were frozen, for `ignoreFreezing`). Leaves use
    /// the default; containers follow their own backward logic.
    func stepCost(input: [Int], computeInputGradient: Bool, ignoreFreezing: Bool) -> LayerCost
}

public extension Layer {
    var ownParameters: [Parameter] { [] }
    var ownBuffers: [NamedBuffer] { [] }
    var children: [any Layer] { [] }

    func stepCost(input: [Int], computeInputGradient: Bool, ignoreFreezing: Bool) -> LayerCost {
        var c = cost(input: input)
        if !computeInputGradient { c.backwardData = 0 }
        if !ignoreFreezing && !hasTrainableParameters { c.backwardWeight = 0 }
        return c
    }

    /// All parameters of this layer and its children, in PyTorch `named_parameters()` order.
    var parameters: [Parameter] { ownParameters + children.flatMap { $0.parameters } }
    /// All buffers of this layer and its children.
    var buffers: [NamedBuffer] { ownBuffers + children.flatMap { $0.buffers } }
    /// `(key, tensor)` in PyTorch `state_dict()` order: own parameters, own buffers, then children.
    var stateDict: [(name: String, tensor: Tensor)] {
        ownParameters.map { ($0.name, $0.value) } + ownBuffers.map { ($0.name, $0.value) }
            + children.flatMap { $0.stateDict }
    }
    var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
    /// Whether backward through this layer has any parameter gradient to write.
    var hasTrainableParameters: Bool { parameters.contains { !$0.isFrozen } }

    /// Freezes or unfreezes this layer, its children and their parameters.
    func setFrozen(_ frozen: Bool) {
        isFrozen = frozen
        for p in ownParameters { p.isFrozen = frozen }
        for c in children { c.setFrozen(frozen) }
    }

    /// Allocates this layer's own parameters and buffers (used by `prepare` implementations).
    func allocateOwnState(on backend: Backend) throws {
        for p in ownParameters { try p.allocate(on: backend) }
        for b in ownBuffers { try b.allocate(on: backend) }
    }
}

// MARK: Helpers for layer implementations

/// `[n] + perImage`.
@inline(__always)
func batched(_ n: Int, _ perImage: [Int]) -> [Int] { [n] + perImage }

/// Checks a run-time tensor against a prepared layer: per-image shape and batch capacity.
@inline(__always)
func checkBatch(_ x: Tensor, _ perImage: [Int], _ maxBatch: Int, _ who: @autoclosure () -> String) {
    precondition(x.rank == perImage.count + 1 && Array(x.shape.dropFirst()) == perImage && x.shape[0] <= maxBatch,
                 "\(who()): got \(x.shape), prepared for (<= \(maxBatch)) x \(perImage)")
}

/// Runs `layers` forward in order; a batch norm followed by an in-place ReLU runs as one fused
/// kernel (`LayerFusion`), after which both layers' backward are as usual.
func forwardChain(_ layers: [any Layer], _ x: Tensor, mode: ForwardMode) -> Tensor {
    var h = x
    var i = 0
    while i < layers.count {
        if i + 1 < layers.count, let relu = LayerFusion.relu(fusedInto: layers[i], followedBy: layers[i + 1]) {
            h = (layers[i] as! BatchNorm2D).forward(h, mode: mode, fusing: relu)
            i += 2
        } else {
            h = layers[i].forward(h, mode: mode)
            i += 1
        }
    }
    return h
}

/// Runs `layers` backward, from the last to the first one that has trainable parameters when no
/// input gradient is wanted (that layer gets `computeInputGradient: false`; layers before it are
/// skipped). This is where a frozen prefix costs nothing in backward.
func backwardChain(_ layers: [any Layer], _ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
    let stop: Int
    if computeInputGradient {
        if layers.isEmpty { return dy }
        stop = 0
    } else {
        guard let first = layers.firstIndex(where: { $0.hasTrainableParameters }) else { return nil }
        stop = first
    }
    var g = dy
    for i in stride(from: layers.count - 1, to: stop, by: -1) {
        guard let dx = layers[i].backward(g, computeInputGradient: true) else {
            preconditionFailure("\(type(of: layers[i])) '\(layers[i].name)' returned no input gradient")
        }
        g = dx
    }
    return layers[stop].backward(g, computeInputGradient: computeInputGradient)
}

/// Per-image output shape of a chain, checking each step.
func outputShapeChain(_ layers: [any Layer], input: [Int]) -> [Int] {
    layers.reduce(input) { $1.outputShape(input: $0) }
}

/// Sum of the costs of a chain.
func costChain(_ layers: [any Layer], input: [Int]) -> LayerCost {
    var shape = input
    var total = LayerCost.zero
    for layer in layers {
        total += layer.cost(input: shape)
        shape = layer.outputShape(input: shape)
    }
    return total
}

/// The step cost of a chain run through `backwardChain`: layers before the one where backward
/// stops cost their forward only.
func stepCostChain(_ layers: [any Layer], input: [Int], computeInputGradient: Bool, ignoreFreezing: Bool) -> LayerCost {
    let stop: Int
    if computeInputGradient {
        stop = 0
    } else {
        stop = layers.firstIndex(where: { ignoreFreezing ? !$0.parameters.isEmpty : $0.hasTrainableParameters })
            ?? layers.count
    }
    var shape = input
    var total = LayerCost.zero
    for (i, layer) in layers.enumerated() {
        if i < stop {
            let c = layer.cost(input: shape)
            total += LayerCost(parameters: c.parameters, forward: c.forward)
        } else {
            total += layer.stepCost(input: shape, computeInputGradient: computeInputGradient || i > stop,
                                    ignoreFreezing: ignoreFreezing)
        }
        shape = layer.outputShape(input: shape)
    }
    return total
}

/// Prepares a chain, threading the shapes.
func prepareChain(_ layers: [any Layer], input: [Int], maxBatch: Int, backend: Backend) throws {
    var shape = input
    for layer in layers {
        try layer.prepare(input: shape, maxBatch: maxBatch, backend: backend)
        shape = layer.outputShape(input: shape)
    }
}
