import GPUTensor
import Foundation

/// `STRATA_MULTI_TENSOR`: `on` (the default) lets the optimizer update every tensor of a step
/// with one call where the backend has `MultiTensorOptimizerKernels` (the CUDA backend: one
/// kernel launch); `off` keeps one update per tensor, so that a GPU run can time the
/// difference. Either way the results are the same to the bit. Backends without the
/// multi-tensor kernels (the CPU) ignore it.
public enum MultiTensorMode: String, Sendable, CaseIterable {
    case on, off

    /// The process's setting.
    static var current: Result<MultiTensorMode, MultiTensorModeError> { parse(getenv(variable).map { String(cString: $0) }) }

    public static let variable = "STRATA_MULTI_TENSOR"

    /// The mode the variable's value asks for (unset or empty: `on`).
    static func parse(_ raw: String?) -> Result<MultiTensorMode, MultiTensorModeError> {
        guard let raw, !raw.isEmpty else { return .success(.on) }
        guard let mode = MultiTensorMode(rawValue: raw) else { return .failure(MultiTensorModeError(value: raw)) }
        return .success(mode)
    }
}

/// A `STRATA_MULTI_TENSOR` value that is neither `on` nor `off`.
public struct MultiTensorModeError: Error, CustomStringConvertible, Equatable {
    public let value: String
    public var description: String { "\(MultiTensorMode.variable) is '\(value)': use on or off" }
}

extension Optimizer {
    /// The backend's multi-tensor kernels if this optimizer's steps use them: SGD and Adam/AdamW
    /// (RMSProp has none), a backend that has them, and `STRATA_MULTI_TENSOR` not `off`. Throws
    /// `MultiTensorModeError` for a switch value it does not know, only where the switch matters.
    func multiTensorKernels() throws -> MultiTensorOptimizerKernels? {
        guard config.kind != .rmsprop, let multi = backend as? MultiTensorOptimizerKernels else { return nil }
        return try multiTensorMode.get() == .on ? multi : nil
    }

    /// One `step` through `multi`, unless two parameters' tensors share memory (the per-tensor
    /// updates run one after another, one launch runs them together).
    /// Returns false when it did nothing, and the caller updates tensor by tensor. Each entry gets
    /// exactly the arguments the per-tensor path gives it: the same state tensors, the learning
    /// rate times the parameter's multiplier, the shared momentum, weight decay, betas and step.
    func multiTensorStep(_ multi: MultiTensorOptimizerKernels, _ parameters: [(name: String, value: Tensor, grad: Tensor)],
                         learningRate baseRate: Float, slots: [[Tensor]]) -> Bool {
        let tensors = parameters.indices.map { [parameters[$0].value, parameters[$0].grad] + slots[$0] }
        guard !parameters.isEmpty, !Self.anyOverlap(tensors) else { return false }
        let c = config
        let rates = parameters.map { baseRate * (c.learningRateScales?[$0.name] ?? 1) }
        switch c.kind {
        case .sgd:
            multi.sgdUpdateAll(parameters.indices.map {
                (parameter: parameters[$0].value, gradient: parameters[$0].grad, velocity: slots[$0].first,
                 learningRate: rates[$0])
            }, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov)
        case .adam, .adamw:
            multi.adamUpdateAll(parameters.indices.map {
                (parameter: parameters[$0].value, gradient: parameters[$0].grad, firstMoment: slots[$0][0],
                 secondMoment: slots[$0][1], learningRate: rates[$0])
            }, beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon, weightDecay: c.weightDecay,
               decoupled: c.kind == .adamw, step: stepCount)
        case .rmsprop:
            return false
        }
        return true
    }

    /// Whether a tensor of one group shares memory with a tensor of another (tensors of one
    /// group may: a gradient that is its parameter is updated the same way by both paths).
    static func anyOverlap(_ groups: [[Tensor]]) -> Bool {
        var ranges: [(storage: ObjectIdentifier, start: Int, end: Int, group: Int)] = []
        for (g, tensors) in groups.enumerated() {
            for t in tensors where t.count > 0 {
                ranges.append((ObjectIdentifier(t.storage), t.offset, t.offset + t.count, g))
            }
        }
        ranges.sort { (UInt(bitPattern: $0.storage), $0.start) < (UInt(bitPattern: $1.storage), $1.start) }
        // A run of ranges that overlap one another, on one storage: more than one group in it
        // means two groups share an element.
        var i = 0
        while i < ranges.count {
            var end = ranges[i].end
            var j = i + 1
            while j < ranges.count && ranges[j].storage == ranges[i].storage && ranges[j].start < end {
                if ranges[j].group != ranges[i].group { return true }
                end = max(end, ranges[j].end)
                j += 1
            }
            i = j
        }
        return false
    }
}
