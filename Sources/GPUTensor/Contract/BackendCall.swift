/// One call of a `Backend` requirement as a value: its arguments, under the requirement's name.
///
/// `ForwardingBackend` builds one per forwarded call and hands it to `around(_:_:)`, so a
/// decorator that observes calls (the profiler, a test's recorder or checker) overrides `around`
/// alone and reads what it needs from the value (`kernel`, `tensors`, `flops`, `epsilon`, or the
/// arguments by pattern matching). Building one copies references, it allocates nothing.
///
/// A new requirement gets its case here (labels as the method's), its `BackendKernel` case and its
/// forwarder in `ForwardingBackend`.
public enum BackendCall {
    case allocate([Int])
    case upload(UnsafeBufferPointer<Float>, to: Tensor)
    case download(Tensor, into: UnsafeMutableBufferPointer<Float>)
    case copy(Tensor, to: Tensor)
    case synchronize
    case gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: Tensor, b: Tensor, beta: Float,
              c: Tensor)
    case gemmBatched(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, batch: Int, alpha: Float, a: Tensor,
                     b: Tensor, beta: Float, c: Tensor)
    case conv2dForward(ConvGeometry, input: Tensor, weight: Tensor, bias: Tensor?, output: Tensor)
    case conv2dBackwardData(ConvGeometry, gradOutput: Tensor, weight: Tensor, gradInput: Tensor)
    case conv2dBackwardFilter(ConvGeometry, input: Tensor, gradOutput: Tensor, gradWeight: Tensor, mode: GradMode)
    case addBias(Tensor, bias: Tensor)
    case biasBackward(gradOutput: Tensor, gradBias: Tensor, mode: GradMode)
    case reluForward(Tensor, output: Tensor)
    case reluBackward(output: Tensor, gradOutput: Tensor, gradInput: Tensor)
    case maxPoolWorkspaceCount(PoolGeometry)
    case maxPoolForward(PoolGeometry, input: Tensor, output: Tensor, workspace: Tensor?)
    case maxPoolBackward(PoolGeometry, input: Tensor, output: Tensor, workspace: Tensor?, gradOutput: Tensor,
                         gradInput: Tensor)
    case avgPoolForward(PoolGeometry, input: Tensor, output: Tensor)
    case avgPoolBackward(PoolGeometry, gradOutput: Tensor, gradInput: Tensor)
    case globalAvgPoolForward(input: Tensor, output: Tensor)
    case globalAvgPoolBackward(gradOutput: Tensor, gradInput: Tensor)
    case batchNormForwardTraining(input: Tensor, output: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                  runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float)
    case batchNormForwardInference(input: Tensor, output: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                   runningVar: Tensor, epsilon: Float)
    case batchNormBackward(input: Tensor, gradOutput: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                           gradInput: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float)
    case batchNormReLUForwardTraining(input: Tensor, output: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                      runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float,
                                      epsilon: Float)
    case batchNormReLUForwardInference(input: Tensor, output: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor,
                                       runningVar: Tensor, epsilon: Float)
    case batchNormReLUBackward(input: Tensor, output: Tensor, gradOutput: Tensor, gamma: Tensor, beta: Tensor,
                               saveMean: Tensor, saveInvStd: Tensor, gradInput: Tensor, gradGamma: Tensor,
                               gradBeta: Tensor, mode: GradMode, epsilon: Float)
    case batchNormAddReLUForwardTraining(input: Tensor, residual: Tensor, output: Tensor, gamma: Tensor, beta: Tensor,
                                         runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         momentum: Float, epsilon: Float)
    case batchNormAddReLUForwardInference(input: Tensor, residual: Tensor, output: Tensor, gamma: Tensor, beta: Tensor,
                                          runningMean: Tensor, runningVar: Tensor, epsilon: Float)
    case softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float)
    case fill(Tensor, value: Float)
    case add(Tensor, Tensor, output: Tensor)
    case scale(Tensor, by: Float, output: Tensor)
    case axpy(alpha: Float, x: Tensor, y: Tensor)
    case sum(Tensor)
    case argmax(rows: Tensor, output: Tensor)
    case sumIntoSlot(Tensor, into: Tensor, slot: Int)
    case countCorrect(logits: Tensor, labels: Tensor, into: Tensor, slot: Int)
    case dropoutForward(Tensor, output: Tensor, mask: Tensor, probability: Float, seed: UInt64, counter: UInt64)
    case dropoutBackward(gradOutput: Tensor, mask: Tensor, gradInput: Tensor)
    case fillUniform(Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64)
    case fillNormal(Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64)
    case sgdUpdate(parameter: Tensor, gradient: Tensor, velocity: Tensor?, learningRate: Float, momentum: Float,
                   weightDecay: Float, nesterov: Bool)
    case rmspropUpdate(parameter: Tensor, gradient: Tensor, squareAverage: Tensor, momentumBuffer: Tensor?,
                       learningRate: Float, alpha: Float, epsilon: Float, momentum: Float, weightDecay: Float)
    case adamUpdate(parameter: Tensor, gradient: Tensor, firstMoment: Tensor, secondMoment: Tensor, learningRate: Float,
                    beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool, step: Int)
    case randomCropFlip(Tensor, output: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64)
    case normalizeChannels(Tensor, output: Tensor, mean: [Float], std: [Float])
    case shortcutPadForward(Tensor, output: Tensor, stride: Int, channelOffset: Int)
    case shortcutPadBackward(gradOutput: Tensor, gradInput: Tensor, stride: Int, channelOffset: Int)

    /// The requirement called (what the profiler counts under).
    public var kernel: BackendKernel {
        switch self {
        case .allocate: return .allocate
        case .upload: return .upload
        case .download: return .download
        case .copy: return .copy
        case .synchronize: return .synchronize
        case .gemm: return .gemm
        case .gemmBatched: return .gemmBatched
        case .conv2dForward: return .conv2dForward
        case .conv2dBackwardData: return .conv2dBackwardData
        case .conv2dBackwardFilter: return .conv2dBackwardFilter
        case .addBias: return .addBias
        case .biasBackward: return .biasBackward
        case .reluForward: return .reluForward
        case .reluBackward: return .reluBackward
        case .maxPoolWorkspaceCount: return .maxPoolWorkspaceCount
        case .maxPoolForward: return .maxPoolForward
        case .maxPoolBackward: return .maxPoolBackward
        case .avgPoolForward: return .avgPoolForward
        case .avgPoolBackward: return .avgPoolBackward
        case .globalAvgPoolForward: return .globalAvgPoolForward
        case .globalAvgPoolBackward: return .globalAvgPoolBackward
        case .batchNormForwardTraining: return .batchNormForwardTraining
        case .batchNormForwardInference: return .batchNormForwardInference
        case .batchNormBackward: return .batchNormBackward
        case .batchNormReLUForwardTraining: return .batchNormReLUForwardTraining
        case .batchNormReLUForwardInference: return .batchNormReLUForwardInference
        case .batchNormReLUBackward: return .batchNormReLUBackward
        case .batchNormAddReLUForwardTraining: return .batchNormAddReLUForwardTraining
        case .batchNormAddReLUForwardInference: return .batchNormAddReLUForwardInference
        case .softmaxCrossEntropy: return .softmaxCrossEntropy
        case .fill: return .fill
        case .add: return .add
        case .scale: return .scale
        case .axpy: return .axpy
        case .sum: return .sum
        case .argmax: return .argmax
        case .sumIntoSlot: return .sumIntoSlot
        case .countCorrect: return .countCorrect
        case .dropoutForward: return .dropoutForward
        case .dropoutBackward: return .dropoutBackward
        case .fillUniform: return .fillUniform
        case .fillNormal: return .fillNormal
        case .sgdUpdate: return .sgdUpdate
        case .rmspropUpdate: return .rmspropUpdate
        case .adamUpdate: return .adamUpdate
        case .randomCropFlip: return .randomCropFlip
        case .normalizeChannels: return .normalizeChannels
        case .shortcutPadForward: return .shortcutPadForward
        case .shortcutPadBackward: return .shortcutPadBackward
        }
    }

    /// Every tensor argument in the signature's order (nil ones left out); the result of
    /// `allocate` is not an argument. Builds an array: for observers, not for the hot path.
    public var tensors: [Tensor] {
        func list(_ ts: Tensor?...) -> [Tensor] { ts.compactMap { $0 } }
        switch self {
        case let .upload(_, destination): return list(destination)
        case let .download(source, _): return list(source)
        case let .copy(source, destination): return list(source, destination)
        case let .gemm(_, _, _, _, _, _, a, b, _, c): return list(a, b, c)
        case let .gemmBatched(_, _, _, _, _, _, _, a, b, _, c): return list(a, b, c)
        case let .conv2dForward(_, x, w, bias, y): return list(x, w, bias, y)
        case let .conv2dBackwardData(_, dy, w, dx): return list(dy, w, dx)
        case let .conv2dBackwardFilter(_, x, dy, dw, _): return list(x, dy, dw)
        case let .addBias(y, bias): return list(y, bias)
        case let .biasBackward(dy, db, _): return list(dy, db)
        case let .reluForward(x, y): return list(x, y)
        case let .reluBackward(y, dy, dx): return list(y, dy, dx)
        case let .maxPoolForward(_, x, y, workspace): return list(x, y, workspace)
        case let .maxPoolBackward(_, x, y, workspace, dy, dx): return list(x, y, workspace, dy, dx)
        case let .avgPoolForward(_, x, y): return list(x, y)
        case let .avgPoolBackward(_, dy, dx): return list(dy, dx)
        case let .globalAvgPoolForward(x, y): return list(x, y)
        case let .globalAvgPoolBackward(dy, dx): return list(dy, dx)
        case let .batchNormForwardTraining(x, y, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, _,
                                           _): return list(x, y, gamma, beta, runningMean, runningVar, saveMean, saveInvStd)
        case let .batchNormForwardInference(x, y, gamma, beta, runningMean, runningVar, _): return list(x, y, gamma, beta,
                                            runningMean, runningVar)
        case let .batchNormBackward(x, dy, gamma, saveMean, saveInvStd, dx, gradGamma, gradBeta, _, _): return list(x, dy,
                                    gamma, saveMean, saveInvStd, dx, gradGamma, gradBeta)
        case let .batchNormReLUForwardTraining(x, y, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, _,
                                               _): return list(x, y, gamma, beta, runningMean, runningVar, saveMean,
                                               saveInvStd)
        case let .batchNormReLUForwardInference(x, y, gamma, beta, runningMean, runningVar, _): return list(x, y, gamma,
                                                beta, runningMean, runningVar)
        case let .batchNormReLUBackward(x, y, dy, gamma, beta, saveMean, saveInvStd, dx, gradGamma, gradBeta, _,
                                        _): return list(x, y, dy, gamma, beta, saveMean, saveInvStd, dx, gradGamma,
                                        gradBeta)
        case let .batchNormAddReLUForwardTraining(x, residual, y, gamma, beta, runningMean, runningVar, saveMean,
                                                  saveInvStd, _, _): return list(x, residual, y, gamma, beta, runningMean,
                                                  runningVar, saveMean, saveInvStd)
        case let .batchNormAddReLUForwardInference(x, residual, y, gamma, beta, runningMean, runningVar, _): return list(x,
                                                   residual, y, gamma, beta, runningMean, runningVar)
        case let .softmaxCrossEntropy(logits, labels, losses, gradLogits, _): return list(logits, labels, losses,
                                      gradLogits)
        case let .fill(x, _): return list(x)
        case let .add(a, b, out): return list(a, b, out)
        case let .scale(x, _, out): return list(x, out)
        case let .axpy(_, x, y): return list(x, y)
        case let .sum(x): return list(x)
        case let .argmax(x, out): return list(x, out)
        case let .sumIntoSlot(x, out, _): return list(x, out)
        case let .countCorrect(logits, labels, out, _): return list(logits, labels, out)
        case let .dropoutForward(x, y, mask, _, _, _): return list(x, y, mask)
        case let .dropoutBackward(dy, mask, dx): return list(dy, mask, dx)
        case let .fillUniform(x, _, _, _, _): return list(x)
        case let .fillNormal(x, _, _, _, _): return list(x)
        case let .sgdUpdate(p, grad, velocity, _, _, _, _): return list(p, grad, velocity)
        case let .rmspropUpdate(p, grad, sq, buf, _, _, _, _, _): return list(p, grad, sq, buf)
        case let .adamUpdate(p, grad, m, v, _, _, _, _, _, _, _): return list(p, grad, m, v)
        case let .randomCropFlip(x, y, _, _, _, _): return list(x, y)
        case let .normalizeChannels(x, y, _, _): return list(x, y)
        case let .shortcutPadForward(x, y, _, _): return list(x, y)
        case let .shortcutPadBackward(dy, dx, _, _): return list(dy, dx)
        default: return []
        }
    }

    /// Floating-point operations where known (convolutions: `ConvGeometry.flops`, GEMMs: 2mnk), else 0.
    public var flops: Double {
        switch self {
        case let .gemm(_, _, m, n, k, _, _, _, _, _): return 2 * Double(m) * Double(n) * Double(k)
        case let .gemmBatched(_, _, m, n, k, batch, _, _, _, _,
                              _): return 2 * Double(batch) * Double(m) * Double(n) * Double(k)
        case let .conv2dForward(g, _, _, _, _), let .conv2dBackwardData(g, _, _, _), let .conv2dBackwardFilter(g, _, _, _,
                                _):
            return g.flops
        default: return 0
        }
    }

    /// The batch-norm epsilon of the calls that take one.
    public var epsilon: Float? {
        switch self {
        case .batchNormForwardTraining(_, _, _, _, _, _, _, _, _, let e),
             .batchNormForwardInference(_, _, _, _, _, _, let e),
             .batchNormBackward(_, _, _, _, _, _, _, _, _, let e),
             .batchNormReLUForwardTraining(_, _, _, _, _, _, _, _, _, let e),
             .batchNormReLUForwardInference(_, _, _, _, _, _, let e),
             .batchNormReLUBackward(_, _, _, _, _, _, _, _, _, _, _, let e),
             .batchNormAddReLUForwardTraining(_, _, _, _, _, _, _, _, _, _, let e),
             .batchNormAddReLUForwardInference(_, _, _, _, _, _, _, let e):
            return e
        default: return nil
        }
    }
}

/// One case per `Backend` requirement (the protocol's order), named as the method
/// (`sum(_:into:slot:)` is `sumIntoSlot`): `BackendCall.kernel`, without the arguments (the
/// profiler's rows).
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
