/// A `Backend` that forwards every requirement to `base`: the base class of decorators
/// (profiling, recording, fault injection).
///
/// Every forwarded call goes through `around(_:_:)` with the call as a value (`BackendCall`: the
/// requirement and its arguments), so a decorator that observes calls overrides `around` alone;
/// one that changes a kernel's behaviour overrides that method and calls `super` (or `base`).
///
/// ```
/// final class CountingBackend: ForwardingBackend {
///     var convolutions = 0
///     override func around<R>(_ call: BackendCall, _ body: () throws -> R) rethrows -> R {
///         if case .conv2dForward = call { convolutions += 1 }
///         return try body()
///     }
/// }
/// ```
/// A new contract requirement is added in its family's protocol (Kernels/<Family>/<Family>.swift)
/// and here, with its `BackendCall` and `BackendKernel` cases (BackendCall.swift). Swift cannot
/// override methods declared in extensions, so the forwarders stay in this one class.
open class ForwardingBackend: Backend {
    /// The wrapped backend.
    public let base: Backend

    public init(wrapping base: Backend) { self.base = base }

    open var device: Device { base.device }
    open var name: String { base.name }
    open var precision: Precision { base.precision }

    /// Runs `body`, which forwards `call` to `base`. The default just runs it.
    open func around<R>(_ call: BackendCall, _ body: () throws -> R) rethrows -> R {
        try body()
    }

    // MARK: Memory

    open func allocate(_ shape: [Int]) throws -> Tensor {
        try around(.allocate(shape)) { try base.allocate(shape) }
    }
    open func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor) {
        around(.upload(source, to: destination)) { base.upload(source, to: destination) }
    }
    open func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws {
        try around(.download(source, into: destination)) { try base.download(source, into: destination) }
    }
    open func copy(_ source: Tensor, to destination: Tensor) {
        around(.copy(source, to: destination)) { base.copy(source, to: destination) }
    }
    open func synchronize() throws {
        try around(.synchronize) { try base.synchronize() }
    }

    // MARK: Dense algebra

    open func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                   alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        around(.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b,
                     beta: beta, c: c)) {
            base.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, b: b,
                      beta: beta, c: c)
        }
    }

    open func gemmBatched(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, batch: Int,
                          alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        around(.gemmBatched(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, batch: batch, alpha: alpha,
                            a: a, b: b, beta: beta, c: c)) {
            base.gemmBatched(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, batch: batch, alpha: alpha,
                             a: a, b: b, beta: beta, c: c)
        }
    }

    // MARK: Convolution

    open func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        around(.conv2dForward(g, input: x, weight: w, bias: bias, output: y)) {
            base.conv2dForward(g, input: x, weight: w, bias: bias, output: y)
        }
    }
    open func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        around(.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx)) {
            base.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx)
        }
    }
    open func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                   gradWeight dw: Tensor, mode: GradMode) {
        around(.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)) {
            base.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)
        }
    }
    open func addBias(_ y: Tensor, bias: Tensor) {
        around(.addBias(y, bias: bias)) { base.addBias(y, bias: bias) }
    }
    open func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        around(.biasBackward(gradOutput: dy, gradBias: db, mode: mode)) {
            base.biasBackward(gradOutput: dy, gradBias: db, mode: mode)
        }
    }

    // MARK: Activations

    open func reluForward(_ x: Tensor, output y: Tensor) {
        around(.reluForward(x, output: y)) { base.reluForward(x, output: y) }
    }
    open func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.reluBackward(output: y, gradOutput: dy, gradInput: dx)) {
            base.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        }
    }

    // MARK: Pooling

    open func maxPoolWorkspaceCount(_ g: PoolGeometry) -> Int {
        around(.maxPoolWorkspaceCount(g)) { base.maxPoolWorkspaceCount(g) }
    }
    open func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?) {
        around(.maxPoolForward(g, input: x, output: y, workspace: workspace)) {
            base.maxPoolForward(g, input: x, output: y, workspace: workspace)
        }
    }
    open func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?,
                              gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.maxPoolBackward(g, input: x, output: y, workspace: workspace, gradOutput: dy, gradInput: dx)) {
            base.maxPoolBackward(g, input: x, output: y, workspace: workspace, gradOutput: dy, gradInput: dx)
        }
    }
    open func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        around(.avgPoolForward(g, input: x, output: y)) { base.avgPoolForward(g, input: x, output: y) }
    }
    open func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.avgPoolBackward(g, gradOutput: dy, gradInput: dx)) {
            base.avgPoolBackward(g, gradOutput: dy, gradInput: dx)
        }
    }
    open func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        around(.globalAvgPoolForward(input: x, output: y)) { base.globalAvgPoolForward(input: x, output: y) }
    }
    open func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.globalAvgPoolBackward(gradOutput: dy, gradInput: dx)) {
            base.globalAvgPoolBackward(gradOutput: dy, gradInput: dx)
        }
    }

    // MARK: Batch normalisation

    open func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                       runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                       momentum: Float, epsilon: Float) {
        around(.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                         runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                         momentum: momentum, epsilon: epsilon)) {
            base.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                          runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                          momentum: momentum, epsilon: epsilon)
        }
    }
    open func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                        runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        around(.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                          runningVar: runningVar, epsilon: epsilon)) {
            base.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                           runningVar: runningVar, epsilon: epsilon)
        }
    }
    open func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        around(.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                  gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)) {
            base.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                   gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        }
    }

    open func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                           runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                           momentum: Float, epsilon: Float) {
        around(.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                             momentum: momentum, epsilon: epsilon)) {
            base.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                              runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                              momentum: momentum, epsilon: epsilon)
        }
    }
    open func batchNormReLUForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                            runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        around(.batchNormReLUForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                              runningVar: runningVar, epsilon: epsilon)) {
            base.batchNormReLUForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                               runningVar: runningVar, epsilon: epsilon)
        }
    }
    open func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor,
                                    saveMean: Tensor,
                                    saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                    mode: GradMode, epsilon: Float) {
        around(.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                      saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta,
                                      mode: mode, epsilon: epsilon)) {
            base.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                       saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta,
                                       mode: mode, epsilon: epsilon)
        }
    }

    open func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor,
                                              beta: Tensor,
                                              runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                              momentum: Float, epsilon: Float) {
        around(.batchNormAddReLUForwardTraining(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                runningMean: runningMean, runningVar: runningVar, saveMean: saveMean,
                                                saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)) {
            base.batchNormAddReLUForwardTraining(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                 runningMean: runningMean, runningVar: runningVar, saveMean: saveMean,
                                                 saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
        }
    }
    open func batchNormAddReLUForwardInference(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor,
                                               beta: Tensor,
                                               runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        around(.batchNormAddReLUForwardInference(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                 runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)) {
            base.batchNormAddReLUForwardInference(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                  runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)
        }
    }

    // MARK: Loss

    open func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        around(.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits,
                                    gradScale: gradScale)) {
            base.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits,
                                     gradScale: gradScale)
        }
    }

    // MARK: Elementwise and reductions

    open func fill(_ x: Tensor, value: Float) {
        around(.fill(x, value: value)) { base.fill(x, value: value) }
    }
    open func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        around(.add(a, b, output: out)) { base.add(a, b, output: out) }
    }
    open func scale(_ x: Tensor, by alpha: Float, output out: Tensor) {
        around(.scale(x, by: alpha, output: out)) { base.scale(x, by: alpha, output: out) }
    }
    open func axpy(alpha: Float, x: Tensor, y: Tensor) {
        around(.axpy(alpha: alpha, x: x, y: y)) { base.axpy(alpha: alpha, x: x, y: y) }
    }
    open func sum(_ x: Tensor) throws -> Float {
        try around(.sum(x)) { try base.sum(x) }
    }
    open func argmax(rows x: Tensor, output out: Tensor) {
        around(.argmax(rows: x, output: out)) { base.argmax(rows: x, output: out) }
    }
    open func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        around(.sumIntoSlot(x, into: out, slot: slot)) { base.sum(x, into: out, slot: slot) }
    }
    open func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        around(.countCorrect(logits: logits, labels: labels, into: out, slot: slot)) {
            base.countCorrect(logits: logits, labels: labels, into: out, slot: slot)
        }
    }

    // MARK: Dropout

    open func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64,
                             counter: UInt64) {
        around(.dropoutForward(x, output: y, mask: mask, probability: p, seed: seed, counter: counter)) {
            base.dropoutForward(x, output: y, mask: mask, probability: p, seed: seed, counter: counter)
        }
    }
    open func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        around(.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx)) {
            base.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx)
        }
    }

    // MARK: Random fills

    open func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        around(.fillUniform(x, low: low, high: high, seed: seed, counter: counter)) {
            base.fillUniform(x, low: low, high: high, seed: seed, counter: counter)
        }
    }
    open func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        around(.fillNormal(x, mean: mean, std: std, seed: seed, counter: counter)) {
            base.fillNormal(x, mean: mean, std: std, seed: seed, counter: counter)
        }
    }

    // MARK: Optimizer updates

    open func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?,
                        learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        around(.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr, momentum: momentum,
                          weightDecay: wd, nesterov: nesterov)) {
            base.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr, momentum: momentum,
                           weightDecay: wd, nesterov: nesterov)
        }
    }
    open func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor,
                            momentumBuffer buf: Tensor?,
                            learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        around(.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr,
                              alpha: alpha, epsilon: eps, momentum: momentum, weightDecay: wd)) {
            base.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr,
                               alpha: alpha, epsilon: eps, momentum: momentum, weightDecay: wd)
        }
    }
    open func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                         learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float,
                         weightDecay wd: Float, decoupled: Bool, step: Int) {
        around(.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr, beta1: beta1,
                           beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step)) {
            base.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr, beta1: beta1,
                            beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step)
        }
    }

    // MARK: Data augmentation

    open func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        around(.randomCropFlip(x, output: y, padding: padding, allowFlip: allowFlip, seed: seed, counter: counter)) {
            base.randomCropFlip(x, output: y, padding: padding, allowFlip: allowFlip, seed: seed, counter: counter)
        }
    }
    open func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        around(.normalizeChannels(x, output: y, mean: mean, std: std)) {
            base.normalizeChannels(x, output: y, mean: mean, std: std)
        }
    }

    // MARK: Residual shortcut

    open func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        around(.shortcutPadForward(x, output: y, stride: stride, channelOffset: channelOffset)) {
            base.shortcutPadForward(x, output: y, stride: stride, channelOffset: channelOffset)
        }
    }
    open func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        around(.shortcutPadBackward(gradOutput: dy, gradInput: dx, stride: stride, channelOffset: channelOffset)) {
            base.shortcutPadBackward(gradOutput: dy, gradInput: dx, stride: stride, channelOffset: channelOffset)
        }
    }
}
