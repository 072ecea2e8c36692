/// A `Backend` that forwards every requirement to `base`: the base class of decorators
/// (profiling, recording, fault injection), so that each overrides only what it observes.
///
/// Every forwarded call goes through `around(_:flops:_:)`, which a subclass may override to see
/// every kernel at once (the profiler times them there); a subclass that changes one kernel
/// overrides that method and calls `super` (or `base`) itself.
///
/// ```
/// final class CountingBackend: ForwardingBackend {
///     var convolutions = 0
///     override func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
///         convolutions += 1
///         super.conv2dForward(g, input: x, weight: w, bias: bias, output: y)
///     }
/// }
/// ```
/// A new contract requirement is added in its family's protocol (Contract/) and here, with its
/// `BackendKernel` case.
open class ForwardingBackend: Backend {
    /// The wrapped backend.
    public let base: Backend

    public init(wrapping base: Backend) { self.base = base }

    open var device: Device { base.device }
    open var name: String { base.name }
    open var precision: Precision { base.precision }

    /// Runs `body`, the forwarded call of `kernel`; `flops` is its floating-point operation
    /// count where known (convolutions: `ConvGeometry.flops`, gemm: 2mnk), evaluated only if
    /// asked for. The default just runs `body`.
    open func around<R>(_ kernel: BackendKernel, flops: @autoclosure () -> Double = 0,
                        _ body: () throws -> R) rethrows -> R {
        try body()
    }

    // MARK: Memory

    open func allocate(_ shape: [Int]) throws -> Tensor {
        try around(.allocate) { try base.allocate(shape) }
    }
    open func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor) {
        around(.upload) { base.upload(source, to: destination) }
    }
    open func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws {
        try around(.download) { try base.download(source, into: destination) }
    }
    open func copy(_ source: Tensor, to destination: Tensor) {
        around(.copy) { base.copy(source, to: destination) }
    }
    open func synchronize() throws {
        try around(.synchronize) { try base.synchronize() }
    }

    // MARK: Dense algebra

    open func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                   alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        around(.gemm, flops: 2 * Double(m) * Double(n) * Double(k)) {
            base.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                      alpha: alpha, a: a, b: b, beta: beta, c: c)
        }
    }

    open func gemmBatched(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, batch: Int,
                          alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        around(.gemmBatched, flops: 2 * Double(batch) * Double(m) * Double(n) * Double(k)) {
            base.gemmBatched(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, batch: batch,
                             alpha: alpha, a: a, b: b, beta: beta, c: c)
        }
    }

    // MARK: Convolution

    open func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        around(.conv2dForward, flops: g.flops) { base.conv2dForward(g, input: x, weight: w, bias: bias, output: y) }
    }
    open func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        around(.conv2dBackwardData, flops: g.flops) { base.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx) }
    }
    open func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                   gradWeight dw: Tensor, mode: GradMode) {
        around(.conv2dBackwardFilter, flops: g.flops) {
            base.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)
        }
    }
    open func addBias(_ y: Tensor, bias: Tensor) {
        around(.addBias) { base.addBias(y, bias: bias) }
    }
    open func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        around(.biasBackward) { base.biasBackward(gradOutput: dy, gradBias: db, mode: mode) }
    }

    // MARK: Activations

    open func reluForward(_ x: Tensor, output y: Tensor) {
        around(.reluForward) { base.reluForward(x, output: y) }
    }
    open func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.reluBackward) { base.reluBackward(output: y, gradOutput: dy, gradInput: dx) }
    }

    // MARK: Pooling

    open func maxPoolWorkspaceCount(_ g: PoolGeometry) -> Int {
        around(.maxPoolWorkspaceCount) { base.maxPoolWorkspaceCount(g) }
    }
    open func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?) {
        around(.maxPoolForward) { base.maxPoolForward(g, input: x, output: y, workspace: workspace) }
    }
    open func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?,
                              gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.maxPoolBackward) {
            base.maxPoolBackward(g, input: x, output: y, workspace: workspace, gradOutput: dy, gradInput: dx)
        }
    }
    open func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        around(.avgPoolForward) { base.avgPoolForward(g, input: x, output: y) }
    }
    open func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.avgPoolBackward) { base.avgPoolBackward(g, gradOutput: dy, gradInput: dx) }
    }
    open func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        around(.globalAvgPoolForward) { base.globalAvgPoolForward(input: x, output: y) }
    }
    open func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        around(.globalAvgPoolBackward) { base.globalAvgPoolBackward(gradOutput: dy, gradInput: dx) }
    }

    // MARK: Batch normalisation

    open func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                       runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                       momentum: Float, epsilon: Float) {
        around(.batchNormForwardTraining) {
            base.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta,
                                          runningMean: runningMean, runningVar: runningVar,
                                          saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
        }
    }
    open func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                        runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        around(.batchNormForwardInference) {
            base.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta,
                                           runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)
        }
    }
    open func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        around(.batchNormBackward) {
            base.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                   gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        }
    }

    open func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                           runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                           momentum: Float, epsilon: Float) {
        around(.batchNormReLUForwardTraining) {
            base.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma, beta: beta,
                                              runningMean: runningMean, runningVar: runningVar,
                                              saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
        }
    }
    open func batchNormReLUForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                            runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        around(.batchNormReLUForwardInference) {
            base.batchNormReLUForwardInference(input: x, output: y, gamma: gamma, beta: beta,
                                               runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)
        }
    }
    open func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor, saveMean: Tensor,
                                    saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                    mode: GradMode, epsilon: Float) {
        around(.batchNormReLUBackward) {
            base.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                       saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta,
                                       mode: mode, epsilon: epsilon)
        }
    }

    open func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                              runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                              momentum: Float, epsilon: Float) {
        around(.batchNormAddReLUForwardTraining) {
            base.batchNormAddReLUForwardTraining(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                 runningMean: runningMean, runningVar: runningVar, saveMean: saveMean,
                                                 saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
        }
    }
    open func batchNormAddReLUForwardInference(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                               runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        around(.batchNormAddReLUForwardInference) {
            base.batchNormAddReLUForwardInference(input: x, residual: residual, output: y, gamma: gamma, beta: beta,
                                                  runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)
        }
    }

    // MARK: Loss

    open func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        around(.softmaxCrossEntropy) {
            base.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits, gradScale: gradScale)
        }
    }

    // MARK: Elementwise and reductions

    open func fill(_ x: Tensor, value: Float) {
        around(.fill) { base.fill(x, value: value) }
    }
    open func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        around(.add) { base.add(a, b, output: out) }
    }
    open func scale(_ x: Tensor, by alpha: Float, output out: Tensor) {
        around(.scale) { base.scale(x, by: alpha, output: out) }
    }
    open func axpy(alpha: Float, x: Tensor, y: Tensor) {
        around(.axpy) { base.axpy(alpha: alpha, x: x, y: y) }
    }
    open func sum(_ x: Tensor) throws -> Float {
        try around(.sum) { try base.sum(x) }
    }
    open func argmax(rows x: Tensor, output out: Tensor) {
        around(.argmax) { base.argmax(rows: x, output: out) }
    }
    open func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        around(.sumIntoSlot) { base.sum(x, into: out, slot: slot) }
    }
    open func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        around(.countCorrect) { base.countCorrect(logits: logits, labels: labels, into: out, slot: slot) }
    }

    // MARK: Dropout

    open func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) {
        around(.dropoutForward) { base.dropoutForward(x, output: y, mask: mask, probability: p, seed: seed, counter: counter) }
    }
    open func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        around(.dropoutBackward) { base.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx) }
    }

    // MARK: Random fills

    open func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        around(.fillUniform) { base.fillUniform(x, low: low, high: high, seed: seed, counter: counter) }
    }
    open func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        around(.fillNormal) { base.fillNormal(x, mean: mean, std: std, seed: seed, counter: counter) }
    }

    // MARK: Optimizer updates

    open func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?,
                        learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        around(.sgdUpdate) {
            base.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr,
                           momentum: momentum, weightDecay: wd, nesterov: nesterov)
        }
    }
    open func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                            learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        around(.rmspropUpdate) {
            base.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr,
                               alpha: alpha, epsilon: eps, momentum: momentum, weightDecay: wd)
        }
    }
    open func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                         learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float,
                         weightDecay wd: Float, decoupled: Bool, step: Int) {
        around(.adamUpdate) {
            base.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr,
                            beta1: beta1, beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step)
        }
    }

    // MARK: Data augmentation

    open func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        around(.randomCropFlip) {
            base.randomCropFlip(x, output: y, padding: padding, allowFlip: allowFlip, seed: seed, counter: counter)
        }
    }
    open func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        around(.normalizeChannels) { base.normalizeChannels(x, output: y, mean: mean, std: std) }
    }

    // MARK: Residual shortcut

    open func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        around(.shortcutPadForward) { base.shortcutPadForward(x, output: y, stride: stride, channelOffset: channelOffset) }
    }
    open func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        around(.shortcutPadBackward) { base.shortcutPadBackward(gradOutput: dy, gradInput: dx, stride: stride, channelOffset: channelOffset) }
    }
}

/// One case per `Backend` requirement (the protocol's order), named as the method
/// (`sum(_:into:slot:)` is `sumIntoSlot`): what `ForwardingBackend.around` is told it runs.
public enum BackendKernel: Int, CaseIterable, Sendable {
    case allocate, upload, download, copy, synchronize
    case gemm, gemmBatched
    case conv2dForward, conv2dBackwardData, conv2dBackwardFilter, addBias, biasBackward
    case reluForward, reluBackward
    case maxPoolWorkspaceCount, maxPoolForward, maxPoolBackward, avgPoolForward, avgPoolBackward, globalAvgPoolForward, globalAvgPoolBackward
    case batchNormForwardTraining, batchNormForwardInference, batchNormBackward
    case batchNormReLUForwardTraining, batchNormReLUForwardInference, batchNormReLUBackward
    case batchNormAddReLUForwardTraining, batchNormAddReLUForwardInference
    case softmaxCrossEntropy
    case fill, add, scale, axpy, sum, argmax
    case sumIntoSlot, countCorrect
    case dropoutForward, dropoutBackward
    case fillUniform, fillNormal
    case sgdUpdate, rmspropUpdate, adamUpdate
    case randomCropFlip, normalizeChannels
    case shortcutPadForward, shortcutPadBackward

    public var name: String { String(describing: self) }
}
