/// The shape preconditions of the `Backend` contract, written once for every backend.
///
/// Each function is named after the requirement it guards and checks what that requirement's
/// specification (Contract/*.swift) says about shapes, counts and arguments; a failure is a bug
/// in the caller (a precondition, see Backend.swift), and its message names the call and the
/// shapes. A backend calls the check first thing in its implementation:
///
/// ```
/// public func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
///     ShapeChecks.add(a, b, output: out)
///     ...
/// }
/// ```
/// The checks compare dimensions one by one and build no arrays, so a steady-state step still
/// allocates nothing. Checks that depend on one backend's own limits (cuDNN's, OpenBLAS's) stay
/// in that backend.
public enum ShapeChecks {
    // MARK: Helpers

    /// Whether `t` is (n, c, h, w), without building an array.
    @inline(__always)
    public static func isShape(_ t: Tensor, _ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Bool {
        t.rank == 4 && t.shape[0] == n && t.shape[1] == c && t.shape[2] == h && t.shape[3] == w
    }

    @inline(__always)
    static func disjoint(_ a: Tensor, _ b: Tensor) -> Bool {
        a.storage !== b.storage || a.offset + a.count <= b.offset || b.offset + b.count <= a.offset
    }

    // MARK: Memory

    @inline(__always)
    public static func upload(_ count: Int, to destination: Tensor) {
        precondition(count == destination.count, "upload of \(count) values into \(destination)")
    }

    @inline(__always)
    public static func download(_ source: Tensor, into count: Int) {
        precondition(count == source.count, "download of \(source) into \(count) values")
    }

    @inline(__always)
    public static func copy(_ source: Tensor, to destination: Tensor) {
        precondition(source.count == destination.count, "copy \(source) to \(destination)")
    }

    // MARK: Dense algebra

    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: Tensor, b: Tensor, c: Tensor) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm with negative size \(m)x\(n)x\(k)")
        precondition(a.count == m * k, "gemm: a \(a.shape) is not \(transposeA ? "(k, m)" : "(m, k)") = \(m), \(k)")
        precondition(b.count == k * n, "gemm: b \(b.shape) is not \(transposeB ? "(n, k)" : "(k, n)") = \(k), \(n)")
        precondition(c.count == m * n, "gemm: c \(c.shape) is not (m, n) = (\(m), \(n))")
    }

    // MARK: Convolution

    /// x: `g.inputShape`, w: `g.weightShape`, y: `g.outputShape`, bias: (Cout) (for backward:
    /// dx in place of x, dw of w, dy of y).
    @inline(__always)
    public static func conv2d(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, output y: Tensor, bias: Tensor? = nil,
                              _ what: StaticString) {
        precondition(isShape(x, g.batch, g.inChannels, g.height, g.width)
                     && isShape(w, g.outChannels, g.inChannels / g.groups, g.kernelH, g.kernelW)
                     && isShape(y, g.batch, g.outChannels, g.outHeight, g.outWidth),
                     "\(what) \(g): x \(x.shape), w \(w.shape), y \(y.shape); expected \(g.inputShape), \(g.weightShape), \(g.outputShape)")
        if let bias { precondition(bias.count == g.outChannels, "\(what) \(g): bias \(bias.shape)") }
    }

    /// y (N, C) or (N, C, H, W) and a bias of C values (`addBias`; `biasBackward` with dy, db).
    @inline(__always)
    public static func bias(_ y: Tensor, bias: Tensor, _ what: StaticString) {
        precondition(y.rank == 2 || y.rank == 4, "\(what): \(y.shape) must be (N, C) or (N, C, H, W)")
        precondition(bias.count == y.shape[1], "\(what): bias \(bias.shape) for \(y.shape)")
    }

    // MARK: Activations

    @inline(__always)
    public static func reluForward(_ x: Tensor, output y: Tensor) {
        precondition(x.count == y.count, "reluForward \(x) -> \(y)")
    }

    @inline(__always)
    public static func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        precondition(y.count == dy.count && y.count == dx.count, "reluBackward \(y), \(dy), \(dx)")
    }

    // MARK: Pooling

    /// x (or dx): `g.inputShape`, y (or dy): `g.outputShape`.
    @inline(__always)
    public static func pool(_ g: PoolGeometry, input x: Tensor, output y: Tensor, _ what: StaticString) {
        precondition(isShape(x, g.batch, g.channels, g.height, g.width)
                     && isShape(y, g.batch, g.channels, g.outHeight, g.outWidth),
                     "\(what): x \(x.shape), y \(y.shape) for pool \(g.inputShape) -> \(g.outputShape)")
    }

    /// A max-pool workspace: nil only where the backend needs none (`count` 0), else at least
    /// `count` elements (`maxPoolWorkspaceCount`).
    @inline(__always)
    public static func maxPoolWorkspace(_ workspace: Tensor?, count: Int, _ what: StaticString) {
        precondition(count == 0 || (workspace?.count ?? 0) >= count,
                     "\(what): workspace \(workspace?.shape ?? []) for \(count) elements (maxPoolWorkspaceCount)")
    }

    /// x (or dx) (N, C, H, W), y (or dy) of N*C values.
    @inline(__always)
    public static func globalAvgPool(input x: Tensor, output y: Tensor, _ what: StaticString) {
        precondition(x.rank == 4 && y.count == x.shape[0] * x.shape[1],
                     "\(what): x \(x.shape) must be (N, C, H, W), y \(y.shape) (N, C)")
    }

    // MARK: Batch normalisation

    @inline(__always)
    public static func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                                runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                                _ what: StaticString = "batchNormForwardTraining") {
        batchNormInput(x, y, what)
        perChannel(x, gamma, what); perChannel(x, beta, what); perChannel(x, runningMean, what)
        perChannel(x, runningVar, what); perChannel(x, saveMean, what); perChannel(x, saveInvStd, what)
        // The unbiased variance of the running statistics needs two values.
        precondition(x.count > x.shape[1], "\(what) needs more than one value per channel, x \(x.shape)")
    }

    @inline(__always)
    public static func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                                 runningMean: Tensor, runningVar: Tensor,
                                                 _ what: StaticString = "batchNormForwardInference") {
        batchNormInput(x, y, what)
        perChannel(x, gamma, what); perChannel(x, beta, what); perChannel(x, runningMean, what); perChannel(x, runningVar, what)
    }

    @inline(__always)
    public static func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                         gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                         _ what: StaticString = "batchNormBackward") {
        batchNormInput(x, dy, what)
        batchNormInput(x, dx, what)
        perChannel(x, gamma, what); perChannel(x, saveMean, what); perChannel(x, saveInvStd, what)
        perChannel(x, gradGamma, what); perChannel(x, gradBeta, what)
    }

    /// The fused batch norm + ReLU: the forwards as `batchNormForwardTraining`/`Inference` (with
    /// their own names); the backward as `batchNormBackward` plus the forward's output y.
    @inline(__always)
    public static func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor,
                                             saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor,
                                             gradBeta: Tensor) {
        let what: StaticString = "batchNormReLUBackward"
        batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                          gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, what)
        batchNormInput(x, y, what)
        perChannel(x, beta, what)
    }

    /// The fused batch norm + add + ReLU: the forward's checks, and the residual of x's shape.
    @inline(__always)
    public static func batchNormResidual(input x: Tensor, residual: Tensor, output y: Tensor, _ what: StaticString) {
        batchNormInput(x, residual, what)
        precondition(residual.storage !== y.storage || residual.offset != y.offset, "\(what): residual aliases y")
    }

    /// x (N, C) or (N, C, H, W) and `other` (y, dy or dx) of the same shape.
    @inline(__always)
    static func batchNormInput(_ x: Tensor, _ other: Tensor, _ what: StaticString) {
        precondition(x.rank == 2 || x.rank == 4, "\(what): x \(x.shape) must be (N, C) or (N, C, H, W)")
        precondition(other.shape == x.shape, "\(what): \(other.shape) for x \(x.shape)")
    }

    /// One value per channel of x.
    @inline(__always)
    static func perChannel(_ x: Tensor, _ t: Tensor, _ what: StaticString) {
        precondition(t.count == x.shape[1], "\(what): \(t) for \(x.shape[1]) channels")
    }

    // MARK: Loss

    @inline(__always)
    public static func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?) {
        precondition(logits.rank == 2, "softmaxCrossEntropy: logits \(logits.shape) must be (N, K)")
        let rows = logits.shape[0], k = logits.shape[1]
        precondition(k > 0 && labels.count == rows && losses.count == rows,
                     "softmaxCrossEntropy: logits \(logits.shape), labels \(labels.shape), losses \(losses.shape)")
        if let g = gradLogits { precondition(g.count == logits.count, "softmaxCrossEntropy: gradLogits \(g.shape)") }
    }

    // MARK: Elementwise and reductions

    @inline(__always)
    public static func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        precondition(a.count == b.count && a.count == out.count, "add \(a) + \(b) -> \(out)")
    }

    @inline(__always)
    public static func scale(_ x: Tensor, output out: Tensor) {
        precondition(x.count == out.count, "scale \(x) -> \(out)")
    }

    @inline(__always)
    public static func axpy(x: Tensor, y: Tensor) {
        precondition(x.count == y.count, "axpy \(x) into \(y)")
    }

    @inline(__always)
    public static func argmax(rows x: Tensor, output out: Tensor) {
        precondition(x.rank == 2 && out.count == x.shape[0], "argmax of \(x) into \(out)")
        precondition(x.shape[1] > 0, "argmax over empty rows \(x)")
    }

    // MARK: Per-batch statistics

    @inline(__always)
    public static func slot(_ out: Tensor, _ slot: Int, _ what: StaticString) {
        precondition(out.rank == 1 && (0..<out.count).contains(slot), "\(what) into slot \(slot) of \(out)")
    }

    @inline(__always)
    public static func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        precondition(logits.rank == 2 && labels.count == logits.shape[0] && logits.shape[1] > 0,
                     "countCorrect of \(logits) against \(labels)")
        Self.slot(out, slot, "countCorrect")
    }

    // MARK: Dropout

    @inline(__always)
    public static func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float) {
        precondition(x.count == y.count && x.count == mask.count, "dropoutForward \(x) -> \(y), mask \(mask)")
        precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
    }

    @inline(__always)
    public static func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        precondition(dy.count == mask.count && dy.count == dx.count, "dropoutBackward \(dy), mask \(mask) -> \(dx)")
    }

    // MARK: Optimizer updates

    /// Returns the velocity to use: nil with momentum 0, else `velocity`, which must be given.
    @inline(__always)
    public static func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, momentum: Float) -> Tensor? {
        precondition(p.count == grad.count, "sgdUpdate: parameter \(p), gradient \(grad)")
        guard momentum != 0 else { return nil }
        guard let velocity else { preconditionFailure("sgdUpdate: momentum \(momentum) needs a velocity tensor") }
        precondition(velocity.count == p.count, "sgdUpdate: velocity \(velocity) for parameter \(p)")
        return velocity
    }

    /// Returns the momentum buffer to use: nil with momentum 0, else `buffer`, which must be given.
    @inline(__always)
    public static func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor,
                                     momentumBuffer buffer: Tensor?, momentum: Float) -> Tensor? {
        precondition(p.count == grad.count && p.count == sq.count, "rmspropUpdate: parameter \(p), gradient \(grad), square average \(sq)")
        guard momentum != 0 else { return nil }
        guard let buffer else { preconditionFailure("rmspropUpdate: momentum \(momentum) needs a momentum buffer") }
        precondition(buffer.count == p.count, "rmspropUpdate: momentum buffer \(buffer) for parameter \(p)")
        return buffer
    }

    @inline(__always)
    public static func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor, step: Int) {
        precondition(p.count == grad.count && p.count == m.count && p.count == v.count,
                     "adamUpdate: parameter \(p), gradient \(grad), moments \(m), \(v)")
        precondition(step >= 1, "adamUpdate: step \(step) must count from 1")
    }

    // MARK: Data augmentation

    @inline(__always)
    public static func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int) {
        precondition(x.rank == 4 && x.shape == y.shape, "randomCropFlip \(x) -> \(y)")
        precondition(padding >= 0, "randomCropFlip: padding \(padding)")
        precondition(disjoint(x, y), "randomCropFlip: input and output overlap")
    }

    @inline(__always)
    public static func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        precondition(x.rank == 4 || x.rank == 2, "normalizeChannels: x \(x.shape) must be (N, C, H, W) or (N, C)")
        let ch = x.shape[1]
        // y[n, c, ...] is indexed like x: the same shape, not only the same count.
        precondition(y.shape == x.shape && mean.count == ch && std.count == ch,
                     "normalizeChannels \(x) -> \(y) with \(mean.count) means, \(std.count) stds")
    }

    // MARK: Strided channel copy (the residual shortcut)

    /// `ceil(size / stride)`: the output size of a strided copy.
    @inline(__always)
    public static func stridedSize(_ size: Int, _ stride: Int) -> Int { (size + stride - 1) / stride }

    /// x (N, Cin, H, W) into y (N, Cout, ceil(H/stride), ceil(W/stride)) at channels
    /// `channelOffset ..< channelOffset + Cin` (for backward: dx in place of x, dy of y).
    @inline(__always)
    public static func shortcutPad(_ x: Tensor, _ y: Tensor, stride: Int, channelOffset: Int, _ what: StaticString) {
        precondition(stride >= 1 && x.rank == 4 && y.rank == 4 && x.shape[0] == y.shape[0]
                     && channelOffset >= 0 && channelOffset + x.shape[1] <= y.shape[1]
                     && y.shape[2] == stridedSize(x.shape[2], stride) && y.shape[3] == stridedSize(x.shape[3], stride),
                     "\(what): x \(x.shape) -> y \(y.shape) with stride \(stride), channel offset \(channelOffset)")
    }
}
