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

    /// The incremental-training paper's setting: RMSProp, lr 1e-4, momentum 0.9, weight decay 1e-4.
    public static func rmsprop(learningRate: Float = 1e-4, momentum: Float = 0.9, weightDecay: Float = 1e-4,
                               alpha: Float = 0.9, epsilon: Float = 1e-7) -> OptimizerConfig {
        OptimizerConfig(kind: .rmsprop, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay,
                        alpha: alpha, epsilon: epsilon)
    }

    public static func adam(learningRate: Float = 1e-3, weightDecay: Float = 0, decoupled: Bool = false) -> OptimizerConfig {
        OptimizerConfig(kind: decoupled ? .adamw : .adam, learningRate: learningRate, weightDecay: weightDecay)
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
