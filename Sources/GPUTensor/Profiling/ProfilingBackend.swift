#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one kernel cost over a profiled interval.
public struct KernelProfile: Sendable, Equatable {
    /// The `Backend` method, e.g. "conv2dForward", "batchNormBackward".
    public var name: String
    public var calls: Int
    /// Wall time spent inside the calls (CLOCK_MONOTONIC).
    public var seconds: Double
    /// Floating-point operations performed, where the kernel has a known count (convolutions:
    /// `ConvGeometry.flops` per call; gemm: 2mnk); 0 otherwise.
    public var flops: Double

    public init(name: String, calls: Int, seconds: Double, flops: Double) {
        self.name = name; self.calls = calls; self.seconds = seconds; self.flops = flops
    }

    /// Achieved GFLOP/s, nil for kernels without a FLOP count.
    public var gflopsPerSecond: Double? {
        flops > 0 && seconds > 0 ? flops / (seconds * 1e9) : nil
    }
}

/// A `Backend` that forwards every call to `base` and records, per kernel, the number of calls,
/// the wall time and (for convolutions and gemm) the FLOPs.
///
/// ```
/// let profiler = ProfilingBackend(wrapping: CPUBackend())
/// ... train with `profiler` as the backend ...
/// profiler.reset()            // after warm-up
/// ... timed steps ...
/// print(profiler.table(totalSeconds: elapsed))
/// ```
///
/// Timing asynchronous backends: a CUDA kernel call returns as soon as the launch is queued, so
/// with `synchronizeEachCall` (the default) the profiler calls `base.synchronize()` before it
/// stops the clock, and each kernel is charged its real execution time. This serialises the
/// GPU: the host can no longer queue work ahead of the device, so a profiled step is slower
/// than an unprofiled one, and the per-kernel times add up to more than the overlap-aware total.
/// With `synchronizeEachCall = false` the times are launch (host) costs only; kernels that wait
/// for the device themselves (`download`, `sum`, `synchronize`) then absorb the queued work.
/// On the CPU backend, whose kernels are synchronous, the flag makes no difference.
///
/// Not thread-safe: drive it from one thread, as trainers drive a backend. The bookkeeping is
/// a fixed table indexed by kernel, so a call allocates nothing beyond what `base` does.
public final class ProfilingBackend: Backend {
    /// The wrapped backend.
    public let base: Backend
    /// Whether to wait for the device after every call so that times are execution times
    /// (see the type's documentation).
    public var synchronizeEachCall: Bool
    /// Whether to count FLOPs of convolutions and gemm.
    public var countFlops: Bool

    private var calls: [Int]
    private var nanoseconds: [UInt64]
    private var flops: [Double]

    public init(wrapping base: Backend, synchronizeEachCall: Bool = true, countFlops: Bool = true) {
        self.base = base
        self.synchronizeEachCall = synchronizeEachCall
        self.countFlops = countFlops
        calls = [Int](repeating: 0, count: Kernel.allCases.count)
        nanoseconds = [UInt64](repeating: 0, count: Kernel.allCases.count)
        flops = [Double](repeating: 0, count: Kernel.allCases.count)
    }

    public var device: Device { base.device }
    public var name: String { base.name }

    /// Clears every counter.
    public func reset() {
        for i in calls.indices { calls[i] = 0; nanoseconds[i] = 0; flops[i] = 0 }
    }

    /// The kernels called since the last reset, most time first (ties by name).
    public func report() -> [KernelProfile] {
        var out: [KernelProfile] = []
        for k in Kernel.allCases where calls[k.rawValue] > 0 {
            out.append(KernelProfile(name: k.name, calls: calls[k.rawValue],
                                     seconds: Double(nanoseconds[k.rawValue]) * 1e-9, flops: flops[k.rawValue]))
        }
        return out.sorted { $0.seconds != $1.seconds ? $0.seconds > $1.seconds : $0.name < $1.name }
    }

    /// The report as an aligned text table: time, % of `totalSeconds`, calls, ms per call and
    /// GFLOP/s where known. With `totalSeconds` (the wall time of the profiled interval) a final
    /// row shows the time spent outside the backend (layer bookkeeping, data, host code).
    public func table(totalSeconds: Double? = nil) -> String {
        let rows = report()
        let kernelSeconds = rows.reduce(0) { $0 + $1.seconds }
        let total = totalSeconds ?? kernelSeconds
        func percent(_ s: Double) -> String { total > 0 ? fixed(100 * s / total, 1) : "-" }
        var lines: [[String]] = [["kernel", "calls", "total ms", "%", "ms/call", "GFLOP/s"]]
        for r in rows {
            lines.append([r.name, String(r.calls), fixed(r.seconds * 1e3, 2), percent(r.seconds),
                          fixed(r.seconds * 1e3 / Double(r.calls), 3),
                          r.gflopsPerSecond.map { fixed($0, 1) } ?? ""])
        }
        lines.append(["all kernels", String(rows.reduce(0) { $0 + $1.calls }), fixed(kernelSeconds * 1e3, 2),
                      percent(kernelSeconds), "", ""])
        if let totalSeconds {
            lines.append(["outside backend", "", fixed((totalSeconds - kernelSeconds) * 1e3, 2),
                          percent(totalSeconds - kernelSeconds), "", ""])
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for l in lines { for (i, c) in l.enumerated() { widths[i] = max(widths[i], c.count) } }
        return lines.map { l in
            l.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i == 0 ? c + pad : pad + c
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    // MARK: Timing

    @inline(__always)
    private func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    @inline(__always)
    private func timed<R>(_ kernel: Kernel, flops f: Double = 0, _ body: () throws -> R) rethrows -> R {
        let start = now()
        defer {
            if synchronizeEachCall { try? base.synchronize() }
            let i = kernel.rawValue
            calls[i] += 1
            nanoseconds[i] &+= now() &- start
            if countFlops { flops[i] += f }
        }
        return try body()
    }

    // MARK: Memory

    public func allocate(_ shape: [Int]) throws -> Tensor {
        try timed(.allocate) { try base.allocate(shape) }
    }
    public func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor) {
        timed(.upload) { base.upload(source, to: destination) }
    }
    public func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws {
        try timed(.download) { try base.download(source, into: destination) }
    }
    public func copy(_ source: Tensor, to destination: Tensor) {
        timed(.copy) { base.copy(source, to: destination) }
    }
    public func synchronize() throws {
        // Not through `timed`: that would synchronize twice.
        let start = now()
        defer {
            calls[Kernel.synchronize.rawValue] += 1
            nanoseconds[Kernel.synchronize.rawValue] &+= now() &- start
        }
        try base.synchronize()
    }

    // MARK: Dense algebra

    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor) {
        timed(.gemm, flops: 2 * Double(m) * Double(n) * Double(k)) {
            base.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                      alpha: alpha, a: a, b: b, beta: beta, c: c)
        }
    }

    // MARK: Convolution

    public func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor) {
        timed(.conv2dForward, flops: g.flops) { base.conv2dForward(g, input: x, weight: w, bias: bias, output: y) }
    }
    public func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor) {
        timed(.conv2dBackwardData, flops: g.flops) { base.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx) }
    }
    public func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                                     gradWeight dw: Tensor, mode: GradMode) {
        timed(.conv2dBackwardFilter, flops: g.flops) {
            base.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: mode)
        }
    }
    public func addBias(_ y: Tensor, bias: Tensor) {
        timed(.addBias) { base.addBias(y, bias: bias) }
    }
    public func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode) {
        timed(.biasBackward) { base.biasBackward(gradOutput: dy, gradBias: db, mode: mode) }
    }

    // MARK: Activations

    public func reluForward(_ x: Tensor, output y: Tensor) {
        timed(.reluForward) { base.reluForward(x, output: y) }
    }
    public func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        timed(.reluBackward) { base.reluBackward(output: y, gradOutput: dy, gradInput: dx) }
    }

    // MARK: Pooling

    public func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        timed(.maxPoolForward) { base.maxPoolForward(g, input: x, output: y) }
    }
    public func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        timed(.maxPoolBackward) { base.maxPoolBackward(g, input: x, output: y, gradOutput: dy, gradInput: dx) }
    }
    public func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        timed(.avgPoolForward) { base.avgPoolForward(g, input: x, output: y) }
    }
    public func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        timed(.avgPoolBackward) { base.avgPoolBackward(g, gradOutput: dy, gradInput: dx) }
    }
    public func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        timed(.globalAvgPoolForward) { base.globalAvgPoolForward(input: x, output: y) }
    }
    public func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        timed(.globalAvgPoolBackward) { base.globalAvgPoolBackward(gradOutput: dy, gradInput: dx) }
    }

    // MARK: Batch normalisation

    public func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                         runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         momentum: Float, epsilon: Float) {
        timed(.batchNormForwardTraining) {
            base.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta,
                                          runningMean: runningMean, runningVar: runningVar,
                                          saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon)
        }
    }
    public func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                          runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        timed(.batchNormForwardInference) {
            base.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta,
                                           runningMean: runningMean, runningVar: runningVar, epsilon: epsilon)
        }
    }
    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                  gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        timed(.batchNormBackward) {
            base.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                   gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode, epsilon: epsilon)
        }
    }

    // MARK: Loss

    public func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        timed(.softmaxCrossEntropy) {
            base.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits, gradScale: gradScale)
        }
    }

    // MARK: Elementwise and reductions

    public func fill(_ x: Tensor, value: Float) {
        timed(.fill) { base.fill(x, value: value) }
    }
    public func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        timed(.add) { base.add(a, b, output: out) }
    }
    public func scale(_ x: Tensor, by alpha: Float, output out: Tensor) {
        timed(.scale) { base.scale(x, by: alpha, output: out) }
    }
    public func axpy(alpha: Float, x: Tensor, y: Tensor) {
        timed(.axpy) { base.axpy(alpha: alpha, x: x, y: y) }
    }
    public func sum(_ x: Tensor) throws -> Float {
        try timed(.sum) { try base.sum(x) }
    }
    public func argmax(rows x: Tensor, output out: Tensor) {
        timed(.argmax) { base.argmax(rows: x, output: out) }
    }
    public func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        timed(.sumIntoSlot) { base.sum(x, into: out, slot: slot) }
    }
    public func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        timed(.countCorrect) { base.countCorrect(logits: logits, labels: labels, into: out, slot: slot) }
    }

    // MARK: Dropout

    public func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) {
        timed(.dropoutForward) { base.dropoutForward(x, output: y, mask: mask, probability: p, seed: seed, counter: counter) }
    }
    public func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        timed(.dropoutBackward) { base.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx) }
    }

    // MARK: Random fills

    public func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        timed(.fillUniform) { base.fillUniform(x, low: low, high: high, seed: seed, counter: counter) }
    }
    public func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        timed(.fillNormal) { base.fillNormal(x, mean: mean, std: std, seed: seed, counter: counter) }
    }

    // MARK: Optimizer updates

    public func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?,
                          learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        timed(.sgdUpdate) {
            base.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, learningRate: lr,
                           momentum: momentum, weightDecay: wd, nesterov: nesterov)
        }
    }
    public func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                              learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        timed(.rmspropUpdate) {
            base.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, learningRate: lr,
                               alpha: alpha, epsilon: eps, momentum: momentum, weightDecay: wd)
        }
    }
    public func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                           learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float,
                           weightDecay wd: Float, decoupled: Bool, step: Int) {
        timed(.adamUpdate) {
            base.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, learningRate: lr,
                            beta1: beta1, beta2: beta2, epsilon: eps, weightDecay: wd, decoupled: decoupled, step: step)
        }
    }

    // MARK: Data augmentation

    public func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        timed(.randomCropFlip) {
            base.randomCropFlip(x, output: y, padding: padding, allowFlip: allowFlip, seed: seed, counter: counter)
        }
    }
    public func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        timed(.normalizeChannels) { base.normalizeChannels(x, output: y, mean: mean, std: std) }
    }

    // MARK: Residual shortcut

    public func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        timed(.shortcutPadForward) { base.shortcutPadForward(x, output: y, stride: stride, channelOffset: channelOffset) }
    }
    public func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        timed(.shortcutPadBackward) { base.shortcutPadBackward(gradOutput: dy, gradInput: dx, stride: stride, channelOffset: channelOffset) }
    }
}

/// One slot per `Backend` method (the protocol's order).
private enum Kernel: Int, CaseIterable {
    case allocate, upload, download, copy, synchronize
    case gemm
    case conv2dForward, conv2dBackwardData, conv2dBackwardFilter, addBias, biasBackward
    case reluForward, reluBackward
    case maxPoolForward, maxPoolBackward, avgPoolForward, avgPoolBackward, globalAvgPoolForward, globalAvgPoolBackward
    case batchNormForwardTraining, batchNormForwardInference, batchNormBackward
    case softmaxCrossEntropy
    case fill, add, scale, axpy, sum, argmax
    case sumIntoSlot, countCorrect
    case dropoutForward, dropoutBackward
    case fillUniform, fillNormal
    case sgdUpdate, rmspropUpdate, adamUpdate
    case randomCropFlip, normalizeChannels
    case shortcutPadForward, shortcutPadBackward

    var name: String { String(describing: self) }
}

/// `x` with `digits` decimals, without Foundation's String(format:).
private func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return String(x) }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(x) * scale).rounded()
    guard scaled < 9e18 else { return String(x) }
    let n = UInt64(scaled), p = UInt64(scale)
    var s = String(n / p)
    if digits > 0 {
        let frac = String(n % p)
        s += "." + String(repeating: "0", count: digits - frac.count) + frac
    }
    return (x < 0 && n > 0 ? "-" : "") + s
}
