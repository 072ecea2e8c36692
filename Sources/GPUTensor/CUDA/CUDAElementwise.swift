#if CUDA
import CCuda
#if canImport(Glibc)
import Glibc
#endif

// Elementwise, reductions, activations, loss, random kernels and optimizer updates: launchers
// for the NVRTC kernels of CUDAKernelSource (same formulas as the CPU backend, see there).
extension CUDABackend {
    public func fill(_ x: Tensor, value: Float) {
        launch(.fill_f32, count: x.count, .tensor(x), .int(x.count), .float(value))
    }

    public func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        precondition(a.count == b.count && a.count == out.count, "add \(a) + \(b) -> \(out)")
        launch(.add_f32, count: a.count, .tensor(a), .tensor(b), .tensor(out), .int(a.count))
    }

    public func scale(_ x: Tensor, by alpha: Float, output out: Tensor) {
        precondition(x.count == out.count, "scale \(x) -> \(out)")
        launch(.scale_f32, count: x.count, .tensor(x), .tensor(out), .int(x.count), .float(alpha))
    }

    public func axpy(alpha: Float, x: Tensor, y: Tensor) {
        precondition(x.count == y.count, "axpy \(x) into \(y)")
        launch(.axpy_f32, count: x.count, .tensor(x), .tensor(y), .int(x.count), .float(alpha))
    }

    /// Block partials in double on the device, added in order on the host.
    public func sum(_ x: Tensor) throws -> Float {
        let n = x.count
        guard n > 0 else { try synchronize(); return 0 }
        let parts = min(blocks(n), 1024)
        let partials = try workspace.reserve(parts * MemoryLayout<Double>.stride)
        launch(.sum_partials, count: n, blocks: parts, .tensor(x), .int(n), .pointer(partials))
        var host = [Double](repeating: 0, count: parts)
        try synchronize()
        try host.withUnsafeMutableBytes { raw in
            try CUDACalls.cudart("cudaMemcpy(sum partials)") {
                cudaMemcpy(raw.baseAddress, partials, parts * MemoryLayout<Double>.stride, cudaMemcpyDeviceToHost)
            }
        }
        return Float(host.reduce(0, +))
    }

    public func argmax(rows x: Tensor, output out: Tensor) {
        precondition(x.rank == 2 && out.count == x.shape[0], "argmax of \(x) into \(out)")
        precondition(x.shape[1] > 0, "argmax over empty rows \(x)")
        launch(.argmax_rows, count: x.shape[0], [.tensor(x), .tensor(out), .int(x.shape[0]), .int(x.shape[1])])
    }

    public func reluForward(_ x: Tensor, output y: Tensor) {
        precondition(x.count == y.count, "reluForward \(x) -> \(y)")
        launch(.relu_forward, count: x.count, .tensor(x), .tensor(y), .int(x.count))
    }

    public func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        precondition(y.count == dy.count && y.count == dx.count, "reluBackward \(y), \(dy), \(dx)")
        launch(.relu_backward, count: y.count, .tensor(y), .tensor(dy), .tensor(dx), .int(y.count))
    }

    /// A label that is not a class index gives a NaN loss (the CPU backend stops on a precondition).
    public func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        precondition(logits.rank == 2, "softmaxCrossEntropy: logits \(logits.shape) must be (N, K)")
        let rows = logits.shape[0], k = logits.shape[1]
        precondition(k > 0 && labels.count == rows && losses.count == rows,
                     "softmaxCrossEntropy: logits \(logits.shape), labels \(labels.shape), losses \(losses.shape)")
        if let g = gradLogits { precondition(g.count == logits.count, "softmaxCrossEntropy: gradLogits \(g.shape)") }
        launch(.softmax_cross_entropy, count: rows,
               .tensor(logits), .tensor(labels), .tensor(losses), .tensor(gradLogits), .int(rows), .int(k),
                .float(gradScale))
    }

    // MARK: Random (Philox, same counters as the CPU)

    public func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) {
        precondition(x.count == y.count && x.count == mask.count, "dropoutForward \(x) -> \(y), mask \(mask)")
        precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
        let keep: Float = 1 / (1 - p)
        launch(.dropout_forward, count: x.count,
               .tensor(x), .tensor(y), .tensor(mask), .int(x.count), .float(p), .float(keep), .uint64(seed), .uint64(counter))
    }

    public func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        precondition(dy.count == mask.count && dy.count == dx.count, "dropoutBackward \(dy), mask \(mask) -> \(dx)")
        launch(.multiply_f32, count: dy.count, .tensor(dy), .tensor(mask), .tensor(dx), .int(dy.count))
    }

    public func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        launch(.fill_uniform, count: x.count,
               .tensor(x), .int(x.count), .float(low), .float(high - low), .uint64(seed), .uint64(counter))
    }

    public func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        launch(.fill_normal, count: x.count,
               .tensor(x), .int(x.count), .float(mean), .float(std), .uint64(seed), .uint64(counter))
    }

    // MARK: Optimizers (scalars derived on the host exactly as CPUOptimizers.swift does)

    public func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float,
                          momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        precondition(p.count == grad.count, "sgdUpdate: parameter \(p), gradient \(grad)")
        guard momentum != 0 else {
            launch(.sgd_plain, count: p.count, .tensor(p), .tensor(grad), .int(p.count), .float(lr), .float(wd))
            return
        }
        guard let velocity else { preconditionFailure("sgdUpdate: momentum \(momentum) needs a velocity tensor") }
        precondition(velocity.count == p.count, "sgdUpdate: velocity \(velocity) for parameter \(p)")
        launch(.sgd_momentum, count: p.count,
               .tensor(p), .tensor(grad), .tensor(velocity), .int(p.count), .float(lr), .float(momentum), .float(wd),
                .int32(Int32(nesterov ? 1 : 0)))
    }

    public func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?,
                              learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        precondition(p.count == grad.count && p.count == sq.count, "rmspropUpdate: parameter \(p), gradient \(grad), square average \(sq)")
        var buffer: Tensor? = nil
        if momentum != 0 {
            guard let buf else { preconditionFailure("rmspropUpdate: momentum \(momentum) needs a momentum buffer") }
            precondition(buf.count == p.count, "rmspropUpdate: momentum buffer \(buf) for parameter \(p)")
            buffer = buf
        }
        launch(.rmsprop_update, count: p.count,
               .tensor(p), .tensor(grad), .tensor(sq), .tensor(buffer), .int(p.count), .float(lr), .float(alpha),
                .float(1 - alpha), .float(eps), .float(momentum), .float(wd))
    }

    public func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor,
                           learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float,
                           weightDecay wd: Float, decoupled: Bool, step: Int) {
        precondition(p.count == grad.count && p.count == m.count && p.count == v.count,
                     "adamUpdate: parameter \(p), gradient \(grad), moments \(m), \(v)")
        precondition(step >= 1, "adamUpdate: step \(step) must count from 1")
        let bc1 = pow(Double(beta1), Double(step)), bc2 = pow(Double(beta2), Double(step))
        let stepSize = Float(Double(lr) / (1 - bc1))
        let invSqrtBc2 = Float(1 / (1 - bc2).squareRoot())
        let l2: Float = decoupled ? 0 : wd
        let shrink: Float = decoupled ? 1 - lr * wd : 1
        launch(.adam_update, count: p.count,
               .tensor(p), .tensor(grad), .tensor(m), .tensor(v), .int(p.count), .float(beta1), .float(beta2),
                .float(1 - beta1), .float(1 - beta2), .float(eps), .float(stepSize), .float(invSqrtBc2),
                .float(l2), .float(shrink))
    }
}
#endif
