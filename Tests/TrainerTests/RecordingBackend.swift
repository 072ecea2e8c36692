import GPUTensor

/// A backend that forwards to another and records, per call, the kernel name and the tensors it
/// writes or reads that tests care about (weights and gradients), plus every allocation.
/// Used to prove what a training step did not do (frozen layers) and did not allocate.
final class RecordingBackend: Backend {
    let base: Backend
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

    init(_ base: Backend) { self.base = base }

    func reset() {
        calls = []
        allocations = 0
    }

    /// Calls of `kernel` whose recorded tensors include a view starting where `t` starts.
    func calls(_ kernel: String, touching t: Tensor) -> Int {
        calls.filter { $0.kernel == kernel && $0.tensors.contains { $0.storage === t.storage && $0.offset == t.offset } }.count
    }

    func count(_ kernel: String) -> Int { calls.filter { $0.kernel == kernel }.count }

    private func record(_ kernel: String, _ tensors: [Tensor] = []) { calls.append((kernel, tensors)) }

    var device: Device { base.device }
    var name: String { "recording " + base.name }

    func allocate(_ shape: [Int]) throws -> Tensor {
        allocations += 1
        return try base.allocate(shape)
    }
    func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor) { base.upload(source, to: destination) }
    func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws {
        try base.download(source, into: destination)
    }
    func copy(_ source: Tensor, to destination: Tensor) { record("copy"); base.copy(source, to: destination) }
    func synchronize() throws { try base.synchronize() }

    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        record("gemm", [a, b, c])
        base.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c)
    }
    func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        record("conv2dForward", [w])
        base.conv2dForward(g, input: x, weight: w, bias: bias, output: y)
    }
    func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        record("conv2dBackwardData", [w])
        base.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx)
    }
    func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor, gradWeight dw: Tensor, mode: GradMode) {
        record("conv2dBackwardFilter", [dw])
        base.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)
    }
    func addBias(_ y: Tensor, bias: Tensor) { record("addBias", [bias]); base.addBias(y, bias: bias) }
    func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        record("biasBackward", [db])
        base.biasBackward(gradOutput: dy, gradBias: db, mode: mode)
    }
    func reluForward(_ x: Tensor, output y: Tensor) { record("reluForward"); base.reluForward(x, output: y) }
    func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        record("reluBackward")
        base.reluBackward(output: y, gradOutput: dy, gradInput: dx)
    }
    func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) { record("maxPoolForward"); base.maxPoolForward(g, input: x, output: y) }
    func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        record("maxPoolBackward")
        base.maxPoolBackward(g, input: x, output: y, gradOutput: dy, gradInput: dx)
    }
    func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) { record("avgPoolForward"); base.avgPoolForward(g, input: x, output: y) }
    func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        record("avgPoolBackward")
        base.avgPoolBackward(g, gradOutput: dy, gradInput: dx)
    }
    func globalAvgPoolForward(input x: Tensor, output y: Tensor) { record("globalAvgPoolForward"); base.globalAvgPoolForward(input: x, output: y) }
    func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        record("globalAvgPoolBackward")
        base.globalAvgPoolBackward(gradOutput: dy, gradInput: dx)
    }
    func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor,
                                  saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        batchNormEpsilons.append(("batchNormForwardTraining", epsilon))
        record("batchNormForwardTraining", [gamma, runningMean])
        base.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                                      saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
    }
    func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        record("batchNormForwardInference", [gamma, runningMean])
        base.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)
    }
    func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                           gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        record("batchNormBackward", [gamma, gradGamma, gradBeta])
        batchNormEpsilons.append(("batchNormBackward", epsilon))
        base.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                               gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
    }
    func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        record("softmaxCrossEntropy")
        base.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits, gradScale: gradScale)
    }
    func fill(_ x: Tensor, value: Float) { record("fill", [x]); base.fill(x, value: value) }
    func add(_ a: Tensor, _ b: Tensor, output out: Tensor) { record("add"); base.add(a, b, output: out) }
    func scale(_ x: Tensor, by alpha: Float, output out: Tensor) { record("scale"); base.scale(x, by: alpha, output: out) }
    func axpy(alpha: Float, x: Tensor, y: Tensor) { record("axpy"); base.axpy(alpha: alpha, x: x, y: y) }
    func sum(_ x: Tensor) throws -> Float { record("sum"); return try base.sum(x) }
    func argmax(rows x: Tensor, output out: Tensor) { record("argmax"); base.argmax(rows: x, output: out) }
    func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        record("sumIntoSlot")
        onSumIntoSlot?(x)
        base.sum(x, into: out, slot: slot)
    }
    func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        record("countCorrect")
        onCountCorrect?(logits, labels)
        base.countCorrect(logits: logits, labels: labels, into: out, slot: slot)
    }
    func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) {
        record("dropoutForward")
        base.dropoutForward(x, output: y, mask: mask, probability: p, seed: seed, counter: counter)
    }
    func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        record("dropoutBackward")
        base.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx)
    }
    func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        record("fillUniform", [x])
        base.fillUniform(x, low: low, high: high, seed: seed, counter: counter)
    }
    func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        record("fillNormal", [x])
        base.fillNormal(x, mean: mean, std: std, seed: seed, counter: counter)
    }
    func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float, momentum: Float,
                   weightDecay wd: Float, nesterov: Bool) {
        record("sgdUpdate", [p])
        base.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr * sgdLearningRateScale, momentum: momentum,
                       weightDecay: wd, nesterov: nesterov)
    }
    func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                       learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        record("rmspropUpdate", [p])
        base.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr,
                           alpha: alpha, epsilon: eps, momentum: momentum, weightDecay: wd)
    }
    func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor, learningRate lr: Float,
                    beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int) {
        record("adamUpdate", [p])
        base.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr, beta1: beta1,
                        beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step)
    }
    func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        record("randomCropFlip")
        base.randomCropFlip(x, output: y, padding: padding, allowFlip: allowFlip, seed: seed, counter: counter)
    }
    func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        record("normalizeChannels")
        base.normalizeChannels(x, output: y, mean: mean, std: std)
    }
    func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        record("shortcutPadForward")
        base.shortcutPadForward(x, output: y, stride: stride, channelOffset: channelOffset)
    }
    func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        record("shortcutPadBackward")
        base.shortcutPadBackward(gradOutput: dy, gradInput: dx, stride: stride, channelOffset: channelOffset)
    }
}
