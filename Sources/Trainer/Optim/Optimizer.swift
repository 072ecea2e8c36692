import GPUTensor

/// Applies one optimizer to named parameters, keeping its per-parameter state on the device.
///
/// State is created on the first step a parameter takes part in (so frozen parameters, which
/// are never passed, cost no memory), and is saved and restored by name for resumable runs.
public final class Optimizer {
    public let config: OptimizerConfig
    let backend: Backend
    /// Updates taken so far (Adam's bias correction uses it; saved in checkpoints).
    public private(set) var stepCount = 0
    /// Parameter name -> state tensors in `config.stateSlots` order.
    public private(set) var state: [String: [Tensor]] = [:]

    /// `STRATA_MULTI_TENSOR` as read when this optimizer was made (MultiTensorStep.swift).
    var multiTensorMode: Result<MultiTensorMode, MultiTensorModeError>

    public init(_ config: OptimizerConfig, backend: Backend) {
        self.config = config
        self.backend = backend
        multiTensorMode = MultiTensorMode.current
    }

    /// One update of every `(name, value, grad)` with learning rate `lr` (from the schedule),
    /// times the parameter's `learningRateScales` entry if it has one. Where the backend has
    /// `MultiTensorOptimizerKernels`, SGD and Adam/AdamW update every tensor with one call, to
    /// the same bits (`multiTensorStep`).
    public func step(_ parameters: [(name: String, value: Tensor, grad: Tensor)], learningRate baseRate: Float) throws {
        let multi = try multiTensorKernels()
        let allSlots = try parameters.map { try stateTensors(for: $0.name, like: $0.value) }
        stepCount += 1
        if let multi, multiTensorStep(multi, parameters, learningRate: baseRate, slots: allSlots) { return }
        let c = config
        for (p, slots) in zip(parameters, allSlots) {
            let lr = baseRate * (c.learningRateScales?[p.name] ?? 1)
            switch c.kind {
            case .sgd:
                backend.sgdUpdate(parameter: p.value, gradient: p.grad, velocity: slots.first,
                                  learningRate: lr, momentum: c.momentum, weightDecay: c.weightDecay,
                                  nesterov: c.nesterov)
            case .rmsprop:
                backend.rmspropUpdate(parameter: p.value, gradient: p.grad, squareAverage: slots[0],
                                      momentumBuffer: slots.count > 1 ? slots[1] : nil, learningRate: lr,
                                      alpha: c.alpha, epsilon: c.epsilon, momentum: c.momentum,
                                      weightDecay: c.weightDecay)
            case .adam, .adamw:
                backend.adamUpdate(parameter: p.value, gradient: p.grad, firstMoment: slots[0], secondMoment: slots[1],
                                   learningRate: lr, beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon,
                                   weightDecay: c.weightDecay, decoupled: c.kind == .adamw, step: stepCount)
            }
        }
    }

    private func stateTensors(for name: String, like value: Tensor) throws -> [Tensor] {
        if let s = state[name] { return s }
        let s = try config.stateSlots.map { _ in try backend.allocate(value.shape) }
        state[name] = s
        return s
    }

    /// FLOPs of one update of `count` parameters (a few per element; for the ledger).
    public func flops(parameterCount count: Int) -> Double {
        let perElement: Double
        switch config.kind {
        case .sgd: perElement = config.momentum != 0 ? 6 : 3
        case .rmsprop: perElement = config.momentum != 0 ? 10 : 8
        case .adam, .adamw: perElement = 14
        }
        return perElement * Double(count)
    }

    /// Takes over `other`'s state for the parameters that have the same name and shape (a grown
    /// network keeps the moments of the layers it carried over, instead of restarting RMSProp or
    /// Adam from zero, whose first steps are large). The step count follows `other`.
    public func adoptState(from other: Optimizer, parameters: [(name: String, value: Tensor)]) throws {
        precondition(other.config.kind == config.kind, "adoptState across optimizer kinds")
        stepCount = max(stepCount, other.stepCount)
        for p in parameters {
            guard let theirs = other.state[p.name], theirs.allSatisfy({ $0.shape == p.value.shape }) else { continue }
            let mine = try stateTensors(for: p.name, like: p.value)
            for (src, dst) in zip(theirs, mine) { backend.copy(src, to: dst) }
        }
    }

    // MARK: Checkpoint state

    /// State tensors named `<parameter>.<slot>` (e.g. `layer1.0.conv1.weight.momentum_buffer`).
    public func namedState() -> [(name: String, tensor: Tensor)] {
        state.keys.sorted().flatMap { key in
            zip(config.stateSlots, state[key]!).map { (name: "\(key).\($0)", tensor: $1) }
        }
    }

    /// Restores state saved by `namedState`; `lookup` returns the saved values of a name, if any.
    public func restore(stepCount: Int, parameters: [(name: String, value: Tensor)],
                        lookup: (String) throws -> [Float]?) throws {
        self.stepCount = stepCount
        state = [:]
        for p in parameters {
            var tensors: [Tensor] = []
            for slot in config.stateSlots {
                guard let values = try lookup("\(p.name).\(slot)") else { break }
                let t = try backend.allocate(p.value.shape)
                guard values.count == t.count else {
                    throw CheckpointStateError(tensor: "\(p.name).\(slot)",
                                               reason: "has \(values.count) values, parameter has \(t.count)")
                }
                backend.upload(values, to: t)
                tensors.append(t)
            }
            if tensors.count == config.stateSlots.count && !tensors.isEmpty { state[p.name] = tensors }
        }
    }
}

/// Optimizer state in a checkpoint that does not fit the model.
public struct CheckpointStateError: Error, CustomStringConvertible {
    public let tensor: String
    public let reason: String
    public var description: String { "optimizer state \(tensor) \(reason)" }
}
