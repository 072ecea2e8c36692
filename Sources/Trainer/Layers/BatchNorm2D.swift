import GPUTensor

/// Batch normalisation per channel, PyTorch `nn.BatchNorm2d` for (N, C, H, W) and, with a
/// per-image input shape (C), `nn.BatchNorm1d` for (N, C) after a dense layer.
///
/// Parameters `weight` (gamma, ones) and `bias` (beta, zeros); buffers `running_mean` (zeros) and
/// `running_var` (ones), updated in training mode with PyTorch's momentum convention.
/// The layer keeps no `num_batches_tracked` counter of its own (the counter only matters for
/// PyTorch's momentum=None, a cumulative average this layer does not offer). Checkpoints still
/// carry one: `ModelState.append` writes an I64 scalar `num_batches_tracked` next to every
/// `running_var`, set to the run's optimizer step count, so that PyTorch's strict
/// `load_state_dict` accepts the file; loading ignores it.
///
/// A frozen batch norm always normalises with the running statistics; its backward is then the
/// per-channel scale `dx = dy * gamma / sqrt(running_var + eps)`.
///
/// When an in-place `ReLU` follows it, containers run both as one fused kernel
/// (`forward(_:mode:fusing:)`, see `LayerFusion`): the output is then `max(bn(x), 0)`, the ReLU
/// layer's own forward and backward cost nothing, and this layer's backward applies ReLU's mask.
public final class BatchNorm2D: Layer {
    public let name: String
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    public let gamma: Parameter        // (C), PyTorch `weight`
    public let beta: Parameter         // (C), PyTorch `bias`
    public let runningMean: NamedBuffer  // (C)
    public let runningVar: NamedBuffer   // (C)
    public var isFrozen = false

    private var backend: Backend!
    private var inputShape: [Int] = []    // (C, H, W) or (C)
    private var maxBatch = 0
    private var output: Tensor!           // (maxBatch, C, ...)
    private var gradInput: Tensor!        // (maxBatch, C, ...)
    private var saveMean: Tensor!         // (C)
    private var saveInvStd: Tensor!       // (C)
    private var zeros: Tensor!            // (C), for the inference-mode backward
    private var input: Tensor?
    private var lastForwardTrained = false
    /// Whether the last forward applied the following ReLU (whose mask backward then applies).
    private var lastForwardFusedReLU = false

    public init(name: String, channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        precondition(channels > 0)
        self.name = name
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        gamma = Parameter(name: name + ".weight", shape: [channels], initializer: .constant(1))
        beta = Parameter(name: name + ".bias", shape: [channels], initializer: .constant(0))
        runningMean = NamedBuffer(name: name + ".running_mean", shape: [channels], initializer: .constant(0))
        runningVar = NamedBuffer(name: name + ".running_var", shape: [channels], initializer: .constant(1))
    }

    public var ownParameters: [Parameter] { [gamma, beta] }
    public var ownBuffers: [NamedBuffer] { [runningMean, runningVar] }

    public func outputShape(input: [Int]) -> [Int] {
        precondition((input.count == 3 || input.count == 1) && input[0] == channels,
                     "\(name): expected (\(channels), H, W) or (\(channels)), got \(input)")
        return input
    }

    public func cost(input: [Int]) -> LayerCost {
        _ = outputShape(input: input)
        return LayerCost(parameters: parameterCount)
    }

    public func prepare(input: [Int], maxBatch: Int, backend: Backend) throws {
        _ = outputShape(input: input)
        try allocateOwnState(on: backend)
        self.backend = backend
        inputShape = input
        self.maxBatch = maxBatch
        output = try backend.allocate(batched(maxBatch, input))
        gradInput = try backend.allocate(batched(maxBatch, input))
        saveMean = try backend.allocate([channels])
        saveInvStd = try backend.allocate([channels])
        zeros = try backend.allocate([channels])
        self.input = nil
    }

    public func forward(_ x: Tensor, mode: ForwardMode) -> Tensor { forward(x, mode: mode, fusing: nil) }

    /// Forward, and with `relu` (the in-place ReLU that follows this layer) that ReLU too, in the
    /// same kernel: returns `max(bn(x), 0)`, which `relu` takes as its own forward's output.
    /// With a `residual` (x's shape; a basic block's shortcut) returns `max(bn(x) + residual, 0)`;
    /// `relu`'s backward then applies its mask itself (the shortcut needs that gradient too) and
    /// this layer's backward is the plain one.
    func forward(_ x: Tensor, mode: ForwardMode, adding residual: Tensor? = nil, fusing relu: ReLU?) -> Tensor {
        checkBatch(x, inputShape, maxBatch, name)
        let y = output.slice(0..<x.shape[0])
        let train = mode == .training && !isFrozen
        if let residual {
            guard let relu else { preconditionFailure("\(name): a residual is only fused with the ReLU after it") }
            if train {
                backend.batchNormAddReLUForwardTraining(input: x, residual: residual, output: y, gamma: gamma.value,
                                                        beta: beta.value, runningMean: runningMean.value,
                                                        runningVar: runningVar.value, saveMean: saveMean,
                                                        saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
            } else {
                backend.batchNormAddReLUForwardInference(input: x, residual: residual, output: y, gamma: gamma.value,
                                                         beta: beta.value, runningMean: runningMean.value,
                                                         runningVar: runningVar.value, epsilon: epsilon)
            }
            lastForwardTrained = train
            lastForwardFusedReLU = false
            input = x
            relu.tookFusedForward(output: y, appliesMask: true)
            return y
        }
        switch (train, relu != nil) {
        case (true, false):
            backend.batchNormForwardTraining(input: x, output: y, gamma: gamma.value, beta: beta.value,
                                             runningMean: runningMean.value, runningVar: runningVar.value,
                                             saveMean: saveMean, saveInvStd: saveInvStd,
                                             momentum: momentum, epsilon: epsilon)
        case (true, true):
            backend.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma.value, beta: beta.value,
                                                 runningMean: runningMean.value, runningVar: runningVar.value,
                                                 saveMean: saveMean, saveInvStd: saveInvStd,
                                                 momentum: momentum, epsilon: epsilon)
        case (false, false):
            backend.batchNormForwardInference(input: x, output: y, gamma: gamma.value, beta: beta.value,
                                              runningMean: runningMean.value, runningVar: runningVar.value,
                                              epsilon: epsilon)
        case (false, true):
            backend.batchNormReLUForwardInference(input: x, output: y, gamma: gamma.value, beta: beta.value,
                                                  runningMean: runningMean.value, runningVar: runningVar.value,
                                                  epsilon: epsilon)
        }
        lastForwardTrained = train
        lastForwardFusedReLU = relu != nil
        input = x
        relu?.tookFusedForward(output: y, appliesMask: false)
        return y
    }

    public func backward(_ dy: Tensor, computeInputGradient: Bool) -> Tensor? {
        guard let x = input else { preconditionFailure("\(name): backward before forward") }
        let dx = gradInput.slice(0..<x.shape[0])
        if lastForwardTrained {
            // One kernel writes dx, dgamma and dbeta; dx is free when not wanted.
            if lastForwardFusedReLU {
                // y, this layer's output, is the fused ReLU's: its mask (the ReLU layer passed dy through).
                backend.batchNormReLUBackward(input: x, output: output.slice(0..<x.shape[0]), gradOutput: dy,
                                              gamma: gamma.value, beta: beta.value, saveMean: saveMean, saveInvStd: saveInvStd,
                                              gradInput: dx, gradGamma: gamma.grad, gradBeta: beta.grad,
                                              mode: .overwrite, epsilon: epsilon)
            } else {
                backend.batchNormBackward(input: x, gradOutput: dy, gamma: gamma.value, saveMean: saveMean,
                                          saveInvStd: saveInvStd, gradInput: dx, gradGamma: gamma.grad,
                                          gradBeta: beta.grad, mode: .overwrite, epsilon: epsilon)
            }
            return computeInputGradient ? dx : nil
        }
        precondition(isFrozen, "\(name): backward through a trainable batch norm run in inference mode")
        guard computeInputGradient else { return nil }
        if lastForwardFusedReLU {
            // A frozen prefix's interior (or Synflow) only: ReLU's mask as its own kernel, in dy's memory.
            backend.reluBackward(output: output.slice(0..<x.shape[0]), gradOutput: dy, gradInput: dy)
        }
        // The inference forward is affine per channel; its adjoint is the scale gamma/sqrt(var+eps),
        // which is the inference kernel itself applied to dy with zero mean and zero shift.
        backend.batchNormForwardInference(input: dy, output: dx, gamma: gamma.value, beta: zeros,
                                          runningMean: zeros, runningVar: runningVar.value, epsilon: epsilon)
        return dx
    }
}
