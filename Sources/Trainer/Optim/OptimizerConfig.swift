/// Which optimizer and its hyperparameters: a plain value, saved in config.json and checkpoints.
/// Update rules are PyTorch's (see `Backend.sgdUpdate`, `rmspropUpdate`, `adamUpdate`).
public struct OptimizerConfig: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case sgd, rmsprop, adam, adamw
    }

    public var kind: Kind
    public var learningRate: Float
    /// SGD and RMSProp momentum.
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    /// RMSProp smoothing constant (PyTorch's `alpha`; Keras' `rho`).
    public var alpha: Float
    public var epsilon: Float
    public var beta1: Float
    public var beta2: Float
    /// Per-parameter multipliers of the learning rate, by parameter name (absent: 1). A pruned
    /// proxy's learning-rate transfer (`Pruning.learningRateTransfer`) sets them, so that the lr a
    /// search finds on the proxy is the one the full model trains with.
    public var learningRateScales: [String: Float]?

    public init(kind: Kind, learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
                weightDecay: Float = 0, alpha: Float = 0.99, epsilon: Float? = nil,
                beta1: Float = 0.9, beta2: Float = 0.999) {
        self.kind = kind
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.alpha = alpha
        self.epsilon = epsilon ?? 1e-8
        self.beta1 = beta1
        self.beta2 = beta2
    }

    /// SGD with momentum 0.9, Nesterov off, weight decay 1e-4 (He et al.'s CIFAR ResNet recipe at lr 0.1).
    public static func sgd(learningRate: Float = 0.1, momentum: Float = 0.9, nesterov: Bool = false,
                           weightDecay: Float = 1e-4) -> OptimizerConfig {
        OptimizerConfig(kind: .sgd, learningRate: learningRate, momentum: momentum, nesterov: nesterov,
                        weightDecay: weightDecay)
    }

    /// The incremental-training paper's setting: RMSProp, lr 1e-4, momentum 0.9, weight decay 1e-4,
    /// and Keras' `rho` 0.9 and `epsilon` 1e-7 (the paper trained with Keras). PyTorch's defaults
    /// are `alpha` 0.99 and `eps` 1e-8: pass them (`--rmsprop-alpha 0.99 --rmsprop-eps 1e-8`)
    /// to compare with a PyTorch run.
    public static let rmspropPaperAlpha: Float = 0.9
    public static let rmspropPaperEpsilon: Float = 1e-7

    public static func rmsprop(learningRate: Float = 1e-4, momentum: Float = 0.9, weightDecay: Float = 1e-4,
                               alpha: Float = rmspropPaperAlpha, epsilon: Float = rmspropPaperEpsilon) -> OptimizerConfig {
        OptimizerConfig(kind: .rmsprop, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay,
                        alpha: alpha, epsilon: epsilon)
    }

    public static func adam(learningRate: Float = 1e-3, weightDecay: Float = 0, decoupled: Bool = false) -> OptimizerConfig {
        OptimizerConfig(kind: decoupled ? .adamw : .adam, learningRate: learningRate, weightDecay: weightDecay)
    }

    /// The optimizer names every command accepts (`--optimizer`, search and hpo spaces).
    public static var names: String { Kind.allCases.map(\.rawValue).joined(separator: ", ") }

    /// The one place an optimizer name becomes a configuration, with one set of defaults for
    /// whatever is not given: sgd lr 0.1, momentum 0.9, weight decay 1e-4 (He et al.'s CIFAR
    /// recipe); rmsprop lr 1e-4, momentum 0.9, weight decay 1e-4, alpha 0.9, epsilon 1e-7 (the
    /// incremental-training paper's Keras setting); adam lr 1e-3, weight decay 0; adamw lr 1e-3,
    /// decoupled weight decay 1e-2 (PyTorch's). `momentum` and `nesterov` matter to sgd and
    /// rmsprop (nesterov to sgd), `alpha` and `epsilon` to rmsprop. Throws `UnknownOptimizer`.
    public static func named(_ name: String, learningRate: Float? = nil, momentum: Float? = nil, nesterov: Bool = false,
                             weightDecay: Float? = nil, alpha: Float? = nil, epsilon: Float? = nil) throws -> OptimizerConfig {
        guard let kind = Kind(rawValue: name) else { throw UnknownOptimizer(name: name) }
        return named(kind, learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                     alpha: alpha, epsilon: epsilon)
    }

    /// `named(_:)` for a kind.
    public static func named(_ kind: Kind, learningRate: Float? = nil, momentum: Float? = nil, nesterov: Bool = false,
                             weightDecay: Float? = nil, alpha: Float? = nil, epsilon: Float? = nil) -> OptimizerConfig {
        switch kind {
        case .sgd:
            return .sgd(learningRate: learningRate ?? 0.1, momentum: momentum ?? 0.9, nesterov: nesterov,
                        weightDecay: weightDecay ?? 1e-4)
        case .rmsprop:
            return .rmsprop(learningRate: learningRate ?? 1e-4, momentum: momentum ?? 0.9, weightDecay: weightDecay ?? 1e-4,
                            alpha: alpha ?? rmspropPaperAlpha, epsilon: epsilon ?? rmspropPaperEpsilon)
        case .adam:
            return .adam(learningRate: learningRate ?? 1e-3, weightDecay: weightDecay ?? 0)
        case .adamw:
            return .adam(learningRate: learningRate ?? 1e-3, weightDecay: weightDecay ?? 1e-2, decoupled: true)
        }
    }

    /// These settings under another optimizer (an hpo space that searches the optimizer): the
    /// learning rate (and its per-parameter scales), momentum, Nesterov and weight decay stay as
    /// they are (the space may set them too, in any order); the constants that mean something
    /// else per optimizer (alpha, epsilon, betas) become the new one's defaults (`named`).
    public func switched(to kind: Kind) -> OptimizerConfig {
        guard kind != self.kind else { return self }
        let defaults = Self.named(kind)
        var c = self
        c.kind = kind
        (c.alpha, c.epsilon, c.beta1, c.beta2) = (defaults.alpha, defaults.epsilon, defaults.beta1, defaults.beta2)
        return c
    }

    /// Decodes config.json and checkpoint metadata. `alpha` and `epsilon` may be absent (files
    /// written before they were settable): RMSProp then gets the values it always had (0.9,
    /// 1e-7), so an old run resumes and reruns exactly as it trained.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        momentum = try c.decodeIfPresent(Float.self, forKey: .momentum) ?? 0
        nesterov = try c.decodeIfPresent(Bool.self, forKey: .nesterov) ?? false
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? 0
        let rms = kind == .rmsprop
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha) ?? (rms ? Self.rmspropPaperAlpha : 0.99)
        epsilon = try c.decodeIfPresent(Float.self, forKey: .epsilon) ?? (rms ? Self.rmspropPaperEpsilon : 1e-8)
        beta1 = try c.decodeIfPresent(Float.self, forKey: .beta1) ?? 0.9
        beta2 = try c.decodeIfPresent(Float.self, forKey: .beta2) ?? 0.999
        learningRateScales = try c.decodeIfPresent([String: Float].self, forKey: .learningRateScales)
    }

    /// Names of the per-parameter state tensors this optimizer keeps (PyTorch's state keys).
    public var stateSlots: [String] {
        switch kind {
        case .sgd: return momentum != 0 ? ["momentum_buffer"] : []
        case .rmsprop: return momentum != 0 ? ["square_avg", "momentum_buffer"] : ["square_avg"]
        case .adam, .adamw: return ["exp_avg", "exp_avg_sq"]
        }
    }
}

/// An optimizer name that is not one of `OptimizerConfig.names`.
public struct UnknownOptimizer: Error, CustomStringConvertible, Equatable {
    public let name: String
    public var description: String { "optimizer '\(name)' is not one of \(OptimizerConfig.names)" }
}
