import GPUTensor

/// A backend that forwards to another and records, per call, the kernel name and the tensors it
/// writes or reads that tests care about (weights and gradients), plus every allocation.
/// Used to prove what a training step did not do (frozen layers) and did not allocate.
///
/// Every kernel is recorded by name in `around` (uploads, downloads and synchronisation are not:
/// they are not kernels of a step); the overrides below only add the tensors of the kernels that
/// touch weights or gradients, and the hooks tests use.
final class RecordingBackend: ForwardingBackend {
    private(set) var calls: [(kernel: String, tensors: [Tensor])] = []
    private(set) var allocations = 0
    /// The epsilon of every batch-norm training forward and backward, in call order.
    private(set) var batchNormEpsilons: [(kernel: String, epsilon: Float)] = []
    /// Scales SGD's learning rate: a deliberately wrong backend for checks that must fail.
    var sgdLearningRateScale: Float = 1
    /// Sees the per-sample losses of each batch statistic the trainer keeps on the device.
    var onSumIntoSlot: ((Tensor) -> Void)?
    /// Sees the logits and labels of each batch's correct count.
    var onCountCorrect: ((Tensor, Tensor) -> Void)?
    /// The tensors the next recorded call is to carry (set by an override just before `super`).
    private var noted: [Tensor] = []

    init(_ base: Backend) { super.init(wrapping: base) }

    func reset() {
        calls = []
        allocations = 0
    }

    /// Calls of `kernel` whose recorded tensors include a view starting where `t` starts.
    func calls(_ kernel: String, touching t: Tensor) -> Int {
        calls.filter { $0.kernel == kernel && $0.tensors.contains { $0.storage === t.storage && $0.offset == t.offset } }.count
    }

    func count(_ kernel: String) -> Int { calls.filter { $0.kernel == kernel }.count }

    override var name: String { "recording " + base.name }

    override func around<R>(_ kernel: BackendKernel, flops: @autoclosure () -> Double = 0,
                            _ body: () throws -> R) rethrows -> R {
        switch kernel {
        case .allocate: allocations += 1
        case .upload, .download, .synchronize: break
        default: calls.append((kernel.name, noted))
        }
        noted = []
        return try body()
    }

    /// Records `tensors` with the call `forward` makes.
    private func noting(_ tensors: [Tensor], _ forward: () -> Void) {
        noted = tensors
        forward()
    }

    override func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        noting([a, b, c]) { super.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c) }
    }
    override func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        noting([w]) { super.conv2dForward(g, input: x, weight: w, bias: bias, output: y) }
    }
    override func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        noting([w]) { super.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx) }
    }
    override func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor, gradWeight dw: Tensor, mode: GradMode) {
        noting([dw]) { super.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode) }
    }
    override func addBias(_ y: Tensor, bias: Tensor) { noting([bias]) { super.addBias(y, bias: bias) } }
    override func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        noting([db]) { super.biasBackward(gradOutput: dy, gradBias: db, mode: mode) }
    }
    override func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor,
                                           saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        batchNormEpsilons.append(("batchNormForwardTraining", epsilon))
        noting([gamma, runningMean]) {
            super.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                                           saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
        }
    }
    override func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                            runningVar: Tensor, epsilon: Float) {
        noting([gamma, runningMean]) {
            super.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                            runningVar: runningVar, epsilon: epsilon)
        }
    }
    override func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                    gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        batchNormEpsilons.append(("batchNormBackward", epsilon))
        noting([gamma, gradGamma, gradBeta]) {
            super.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                    gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        }
    }
    override func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                               runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        batchNormEpsilons.append(("batchNormReLUForwardTraining", epsilon))
        noting([gamma, runningMean]) {
            super.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                               runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                               momentum: momentum, epsilon: epsilon)
        }
    }
    override func batchNormReLUForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                                runningVar: Tensor, epsilon: Float) {
        noting([gamma, runningMean]) {
            super.batchNormReLUForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                                runningVar: runningVar, epsilon: epsilon)
        }
    }
    override func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor, saveMean: Tensor,
                                        saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                        mode: GradMode, epsilon: Float) {
        batchNormEpsilons.append(("batchNormReLUBackward", epsilon))
        noting([gamma, gradGamma, gradBeta]) {
            super.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                        saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta,
                                        mode: mode, epsilon: epsilon)
        }
    }
    override func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                                  runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                                  momentum: Float, epsilon: Float) {
        batchNormEpsilons.append(("batchNormAddReLUForwardTraining", epsilon))
        noting([gamma, runningMean]) {
            super.batchNormAddReLUForwardTraining(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                  runningMean: runningMean, runningVar: runningVar, saveMean: saveMean,
                                                  saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
        }
    }
    override func batchNormAddReLUForwardInference(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                                   runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        noting([gamma, runningMean]) {
            super.batchNormAddReLUForwardInference(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                   runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)
        }
    }
    override func fill(_ x: Tensor, value: Float) { noting([x]) { super.fill(x, value: value) } }
    override func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        onSumIntoSlot?(x)
        super.sum(x, into: out, slot: slot)
    }
    override func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        onCountCorrect?(logits, labels)
        super.countCorrect(logits: logits, labels: labels, into: out, slot: slot)
    }
    override func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        noting([x]) { super.fillUniform(x, low: low, high: high, seed: seed, counter: counter) }
    }
    override func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        noting([x]) { super.fillNormal(x, mean: mean, std: std, seed: seed, counter: counter) }
    }
    override func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float, momentum: Float,
                            weightDecay wd: Float, nesterov: Bool) {
        noting([p]) {
            super.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr * sgdLearningRateScale,
                            momentum: momentum, weightDecay: wd, nesterov: nesterov)
        }
    }
    override func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                                learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        noting([p]) {
            super.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr,
                                alpha: alpha, epsilon: eps, momentum: momentum, weightDecay: wd)
        }
    }
    override func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor, learningRate lr: Float,
                             beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int) {
        noting([p]) {
            super.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr, beta1: beta1,
                             beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step)
        }
    }
}
