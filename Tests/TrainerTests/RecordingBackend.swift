import GPUTensor

/// A backend that forwards to another and records, per call, the kernel name and its tensors,
/// plus every allocation. Used to prove what a training step did not do (frozen layers) and did
/// not allocate.
///
/// Everything is read from the call value in `around` (uploads, downloads and synchronisation
/// are not recorded: they are not kernels of a step); the one override changes a kernel on
/// purpose (`sgdLearningRateScale`).
final class RecordingBackend: ForwardingBackend {
    private(set) var calls: [(kernel: String, tensors: [Tensor])] = []
    private(set) var allocations = 0
    /// The epsilon of every batch-norm call, in call order.
    private(set) var batchNormEpsilons: [(kernel: String, epsilon: Float)] = []
    /// Scales SGD's learning rate: a deliberately wrong backend for checks that must fail.
    var sgdLearningRateScale: Float = 1
    /// Sees the per-sample losses of each batch statistic the trainer keeps on the device.
    var onSumIntoSlot: ((Tensor) -> Void)?
    /// Sees the logits and labels of each batch's correct count.
    var onCountCorrect: ((Tensor, Tensor) -> Void)?

    init(_ base: Backend) { super.init(wrapping: base) }

    func reset() {
        calls = []
        allocations = 0
    }

    /// Calls of `kernel` with a tensor argument that is a view starting where `t` starts.
    func calls(_ kernel: String, touching t: Tensor) -> Int {
        calls.filter { $0.kernel == kernel && $0.tensors.contains { $0.storage === t.storage && $0.offset == t.offset } }.count
    }

    func count(_ kernel: String) -> Int { calls.filter { $0.kernel == kernel }.count }

    override var name: String { "recording " + base.name }

    override func around<R>(_ call: BackendCall, _ body: () throws -> R) rethrows -> R {
        switch call {
        case .allocate: allocations += 1
        case .upload, .download, .synchronize: break
        default: calls.append((call.kernel.name, call.tensors))
        }
        if let epsilon = call.epsilon { batchNormEpsilons.append((call.kernel.name, epsilon)) }
        if case let .sumIntoSlot(x, _, _) = call { onSumIntoSlot?(x) }
        if case let .countCorrect(logits, labels, _, _) = call { onCountCorrect?(logits, labels) }
        return try body()
    }

    override func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float, momentum: Float,
                            weightDecay wd: Float, nesterov: Bool) {
        super.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr * sgdLearningRateScale,
                        momentum: momentum, weightDecay: wd, nesterov: nesterov)
    }
}
