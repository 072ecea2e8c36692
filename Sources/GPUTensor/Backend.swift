/// The kernels a CNN trainer needs, implemented once per device (`CPUBackend`, `CUDABackend`).
///
/// Conventions, shared by every implementation so that layers never ask which one they run on:
/// - Tensors are float32 and dense; shapes are logical: images (N, C, H, W), conv weights
///   (O, I, KH, KW). All tensors of a call live on `device`. Shapes are checked with
///   preconditions: a mismatch is a bug in the caller.
/// - Storage order is each backend's own choice: CUDA stores everything row-major (NCHW); the
///   CPU stores rank-4 tensors channels-last, physical order (dim0, dim2, dim3, dim1). Hence
///   callers never read memory directly: `upload`/`download` take and give logical row-major
///   arrays, `copy` copies in logical order (between shapes too: (N, C, H, W) -> (N, C*H*W) is
///   PyTorch's flatten), and a `reshaped` view of a rank-4 tensor to another shape is wrong
///   (slices of the first dimension are fine). Random kernels index Philox by logical position.
/// - Kernels may run asynchronously; `download` and `synchronize` wait for them. A device
///   failure (launch error, lost GPU) is reported by the next `synchronize` or `download`.
/// - Integer labels and indices are stored in float32 tensors (exact below 2^24).
/// - Random kernels are counter-based (Philox4x32-10, see `Philox`): element `i` of a call with
///   `(seed, counter)` depends only on those three numbers, so the CPU and CUDA agree and a
///   checkpoint only has to store a counter.
/// - Gradients of weights take a `GradMode`; gradients of inputs always overwrite.
public protocol Backend: AnyObject {
    var device: Device { get }
    /// A short human-readable name ("cpu (OpenBLAS, 2 threads)").
    var name: String { get }

    // MARK: Memory

    /// A zero-filled tensor. Throws when the device is out of memory.
    func allocate(_ shape: [Int]) throws -> Tensor
    func upload(_ source: UnsafeBufferPointer<Float>, to destination: Tensor)
    func download(_ source: Tensor, into destination: UnsafeMutableBufferPointer<Float>) throws
    /// `destination = source` in logical row-major order (same element count, same device).
    func copy(_ source: Tensor, to destination: Tensor)
    /// Waits for queued kernels and reports a device failure, if any.
    func synchronize() throws

    // MARK: Dense algebra

    /// Row-major `c = alpha * op(a) * op(b) + beta * c` with `op(a)` (m, k) and `op(b)` (k, n).
    /// Stored shapes: `a` is (m, k), or (k, m) when `transposeA`; `b` is (k, n), or (n, k) when
    /// `transposeB`; `c` is (m, n).
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
              alpha: Float, a: Tensor, b: Tensor, beta: Float, c: Tensor)

    // MARK: Convolution

    /// `y = conv(x, w) (+ bias)`. x: `g.inputShape`, w: `g.weightShape`, bias: (Cout), y: `g.outputShape`.
    func conv2dForward(_ g: ConvGeometry, input x: Tensor, weight w: Tensor, bias: Tensor?, output y: Tensor)
    /// `dx = d(loss)/dx` from dy: `g.outputShape` and w; overwrites dx: `g.inputShape`.
    func conv2dBackwardData(_ g: ConvGeometry, gradOutput dy: Tensor, weight w: Tensor, gradInput dx: Tensor)
    /// `dw (+)= d(loss)/dw` from x and dy.
    func conv2dBackwardFilter(_ g: ConvGeometry, input x: Tensor, gradOutput dy: Tensor,
                              gradWeight dw: Tensor, mode: GradMode)
    /// `y[n, c, ...] += bias[c]` for y of shape (N, C) or (N, C, H, W).
    func addBias(_ y: Tensor, bias: Tensor)
    /// `db (+)= sum of dy over all axes but 1`, for dy (N, C) or (N, C, H, W).
    func biasBackward(gradOutput dy: Tensor, gradBias db: Tensor, mode: GradMode)

    // MARK: Activations

    /// `y = max(x, 0)`; x and y may be the same tensor.
    func reluForward(_ x: Tensor, output y: Tensor)
    /// `dx = dy * (y > 0)` from the forward output y; dx may alias dy.
    func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor)

    // MARK: Pooling

    func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor)
    /// Routes each dy to the first maximal input of its window (row-major order); overwrites dx.
    func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor)
    func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor)
    func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor)
    /// x (N, C, H, W) -> y (N, C) or (N, C, 1, 1), the mean over H x W.
    func globalAvgPoolForward(input x: Tensor, output y: Tensor)
    func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor)

    // MARK: Batch normalisation (per channel over N, H, W; x is (N, C) or (N, C, H, W))

    /// Needs more than one value per channel. Normalises with the batch statistics, saves mean and 1/sqrt(var + eps) (biased variance)
    /// for backward, and updates running stats PyTorch's way:
    /// `running = (1 - momentum) * running + momentum * batch` with the unbiased variance.
    func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                  runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                                  momentum: Float, epsilon: Float)
    /// Normalises with the running statistics.
    func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor,
                                   runningMean: Tensor, runningVar: Tensor, epsilon: Float)
    /// Backward of the training forward: overwrites dx, and writes or adds dgamma, dbeta per `mode`.
    /// `epsilon` is the forward's (cuDNN asks for the same value in both directions).
    func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor,
                           gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float)

    // MARK: Loss

    /// Fused log-softmax + negative log-likelihood over logits (N, K) with labels (N) holding
    /// whole class indices in 0..<K. Writes the per-sample loss (N) and, if given,
    /// `gradLogits = (softmax(logits) - onehot(label)) * gradScale` (N, K) (use 1/N for a mean loss).
    func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float)

    // MARK: Elementwise and reductions (same element counts; outputs may alias inputs)

    func fill(_ x: Tensor, value: Float)
    /// `out = a + b`.
    func add(_ a: Tensor, _ b: Tensor, output out: Tensor)
    /// `out = alpha * x`.
    func scale(_ x: Tensor, by alpha: Float, output out: Tensor)
    /// `y += alpha * x`.
    func axpy(alpha: Float, x: Tensor, y: Tensor)
    /// The sum of all elements (waits for the device).
    func sum(_ x: Tensor) throws -> Float
    /// For x (N, K) writes the index of each row's first maximum into out (N).
    func argmax(rows x: Tensor, output out: Tensor)

    // MARK: Per-batch statistics kept on the device (a trainer reads an epoch's once, at its end)

    /// `out[slot] = sum of all elements of x`, as a float32, without waiting for the device.
    /// The value is the one `sum(x)` would return on the same backend up to the summation order
    /// (CPU: bit-identical; CUDA: float64 accumulation in one block, rounded once). A non-finite
    /// element makes the slot non-finite, which is how a trainer detects divergence without a
    /// per-batch host sync. `out` is a 1-D tensor, `0 <= slot < out.count`.
    func sum(_ x: Tensor, into out: Tensor, slot: Int)
    /// `out[slot] = #{n : argmax(logits[n]) == labels[n]}` as a float (exact below 2^24), with
    /// `argmax` the index of the row's first maximum (as `argmax(rows:output:)`).
    /// logits (N, K), labels (N) holding class indices; `0 <= slot < out.count`.
    func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int)

    // MARK: Dropout

    /// With `u_i = Philox.uniform(seed, counter, i)`: `mask_i = u_i >= p ? 1/(1-p) : 0`, `y = x * mask`.
    func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64)
    /// `dx = dy * mask`.
    func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor)

    // MARK: Random fills (element i from Philox stream (seed, counter), see `Philox`)

    /// `low + (high - low) * u` with u uniform in [0, 1) (float rounding may reach `high`).
    func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64)
    /// Normal(mean, std) by Box-Muller.
    func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64)

    // MARK: Optimizer updates (PyTorch's update rules; weight decay is L2 added to the gradient unless stated)

    /// `g = grad + wd*p; v = momentum*v + g; p -= lr * (nesterov ? g + momentum*v : v)`;
    /// with momentum 0, `velocity` may be nil and `p -= lr * g`.
    func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?,
                   learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool)
    /// `g = grad + wd*p; sq = alpha*sq + (1-alpha)*g^2; d = g / (sqrt(sq) + eps)`;
    /// with momentum: `buf = momentum*buf + d; p -= lr*buf`, else `p -= lr*d`.
    func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                       learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float)
    /// Adam (L2 weight decay into the gradient) or AdamW (`decoupled`: `p *= 1 - lr*wd` first).
    /// `step` is the 1-based count of updates including this one (for bias correction).
    func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                    learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float,
                    weightDecay wd: Float, decoupled: Bool, step: Int)

    // MARK: Data augmentation (x, y: (N, C, H, W))

    /// Random crop of the image zero-padded by `padding` pixels, then optional horizontal flip
    /// (x and y must not overlap).
    /// For image n, with `u_k = Philox.uniform(seed, counter, 3n + k)`:
    /// `oy = floor(u_0 * (2p+1)) - p`, `ox = floor(u_1 * (2p+1)) - p`, `flip = allowFlip && u_2 < 0.5`;
    /// `y[n, c, i, j] = x[n, c, i + oy, j' + ox]` (0 outside the image) with `j' = flip ? W-1-j : j`.
    func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64)
    /// `y[n, c, ...] = (x[n, c, ...] - mean[c]) / std[c]` for (N, C) or (N, C, H, W).
    func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float])

    // MARK: Residual shortcut, option A (He et al. 2016, CIFAR)

    /// `y[n, c + channelOffset, i, j] = x[n, c, i*stride, j*stride]`, all other y zero.
    /// x (N, Cin, H, W), y (N, Cout, ceil(H/stride), ceil(W/stride)).
    func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int)
    /// The adjoint: `dx[n, c, i*stride, j*stride] = dy[n, c + channelOffset, i, j]`, all other dx zero.
    func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int)
}

public extension Backend {
    /// A tensor holding `values`.
    func tensor(_ values: [Float], shape: [Int]) throws -> Tensor {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let t = try allocate(shape)
        values.withUnsafeBufferPointer { upload($0, to: t) }
        return t
    }

    func upload(_ values: [Float], to destination: Tensor) {
        precondition(values.count == destination.count, "\(values.count) values for \(destination)")
        values.withUnsafeBufferPointer { upload($0, to: destination) }
    }

    /// The tensor's elements on the host.
    func download(_ source: Tensor) throws -> [Float] {
        var out = [Float](repeating: 0, count: source.count)
        try out.withUnsafeMutableBufferPointer { try download(source, into: $0) }
        return out
    }

    /// He/Kaiming normal init: std = sqrt(2 / fanIn).
    func fillHeNormal(_ x: Tensor, fanIn: Int, seed: UInt64, counter: UInt64) {
        fillNormal(x, mean: 0, std: (2.0 / Float(fanIn)).squareRoot(), seed: seed, counter: counter)
    }
}
