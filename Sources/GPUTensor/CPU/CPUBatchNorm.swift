// Our batch-norm kernels: the inference forwards (plain, + ReLU, + residual + ReLU), each one
// pass that applies the per-channel map and its epilogue as it writes y, and the add + ReLU pass
// that follows oneDNN's batch norm in the training forward of batch norm + residual + ReLU (oneDNN
// 2.6's batch norm has no residual post-op). The training forwards' statistics and the backwards
// are oneDNN's (DNNLBatchNorm.swift; bench/NOTES.md section 13). x is (N, C) or channels-last
// (N, C, H, W): both are R rows of C values (CPULayout.swift), so every pass runs along rows with
// the channel as the inner, vectorised index.
//
// `chunkedSums` (per-column sums in Double over fixed chunks, the same for any thread count)
// serves `columnSums`, the bias gradient's reduction.
extension CPUBackend {
    /// Rows per chunk: about 16K elements, so a chunk is worth a thread.
    @inline(__always)
    private static func chunkRows(channels: Int) -> Int { max(8, 16384 / max(1, channels)) }

    /// Rows summed in float32 before a block's sums go into the Double partials.
    private static let blockRows = 16

    /// Per-channel sums over the rows of chunks: `terms(rows, partial)` adds the terms of the rows
    /// `rows` (at most `blockRows` of them) into `partial` (`width` floats, zeroed first); each
    /// block's floats are then added into its chunk's Double partials, and the chunks' partials
    /// are added in order into `out` (`width` Doubles).
    @inline(__always)
    func chunkedSums(rows: Int, channels: Int, width: Int, slot: Int, into out: UnsafeMutablePointer<Double>,
                             _ terms: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        let per = Self.chunkRows(channels: channels)
        let chunks = max(1, (rows + per - 1) / per)
        let raw = UnsafeMutableRawPointer(workspace.buffer(slot: slot, count: 2 * chunks * width))
        let partials = raw.bindMemory(to: Double.self, capacity: chunks * width)
        parallelFor(chunks) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { block in
                let f = block.baseAddress!
                for chunk in range {
                    let p = partials + chunk * width
                    p.update(repeating: 0, count: width)
                    var r = chunk * per
                    let end = min(rows, (chunk + 1) * per)
                    while r < end {
                        let r1 = min(end, r + Self.blockRows)
                        f.update(repeating: 0, count: width)
                        terms(r..<r1, f)
                        for k in 0..<width { p[k] += Double(f[k]) }
                        r = r1
                    }
                }
            }
        }
        out.update(repeating: 0, count: width)
        for chunk in 0..<chunks {
            let p = partials + chunk * width
            for k in 0..<width { out[k] += p[k] }
        }
        raw.bindMemory(to: Float.self, capacity: 2 * chunks * width)
    }

    /// `y = max(y + residual, 0)` in one pass over y (rows of C values), rounded as `add` then
    /// `reluForward` round it: what the training forward of batch norm + residual + ReLU runs after
    /// oneDNN's batch norm (DNNLBatchNorm.swift).
    func addReLUInPlace(_ y: Tensor, residual: Tensor) {
        let yp = y.hostPointer, rp = residual.hostPointer, n = y.count
        parallelFor((n + 7) / 8, grain: Self.grain(itemCost: 16)) { blocks in
            let start = blocks.lowerBound * 8, end = min(n, blocks.upperBound * 8)
            var i = start
            while i + 8 <= end {
                store8(relu8(load8(yp + i) + load8(rp + i)), yp + i)
                i += 8
            }
            for i in i..<end { yp[i] = relu1(yp[i] + rp[i]) }
        }
    }

    /// `y = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta`.
    public func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        ShapeChecks.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta,
                                              runningMean: runningMean, runningVar: runningVar)
        batchNormInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                           epsilon: epsilon, then: .none)
    }

    /// `max(batchNormForwardInference(x), 0)` in one pass.
    public func batchNormReLUForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        ShapeChecks.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta,
                                              runningMean: runningMean, runningVar: runningVar, "batchNormReLUForwardInference")
        batchNormInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                           epsilon: epsilon, then: .relu)
    }

    /// `max(batchNormForwardInference(x) + residual, 0)` in one pass.
    public func batchNormAddReLUForwardInference(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        ShapeChecks.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                              runningVar: runningVar, "batchNormAddReLUForwardInference")
        ShapeChecks.batchNormResidual(input: x, residual: residual, output: y, "batchNormAddReLUForwardInference")
        batchNormInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                           epsilon: epsilon, then: .addReLU(residual.hostPointer))
    }

    /// The inference map as the training forward's: per channel `scale = gamma / sqrt(runningVar + eps)`,
    /// `offset = beta - runningMean * scale`, then `normalizeRows`.
    private func batchNormInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float, then epilogue: BatchNormEpilogue) {
        let (_, ch, _, _) = x.nchw
        let gp = gamma.hostPointer, bp = beta.hostPointer
        let rmp = runningMean.hostPointer, rvp = runningVar.hostPointer
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * ch) { affine in
            let scale = affine.baseAddress!, offset = scale + ch
            for c in 0..<ch {
                (scale[c], offset[c]) = normalizingAffine(gamma: gp[c], beta: bp[c], mean: rmp[c],
                                                          invStd: 1 / (rvp[c] + epsilon).squareRoot())
            }
            normalizeRows(x.count / max(1, ch), channels: ch, x: x.hostPointer, y: y.hostPointer, scale: scale,
                          offset: offset, then: epilogue)
        }
    }

    /// `y = x * scale + offset` per channel over `rows` rows of `channels` values, then the epilogue
    /// (nothing, ReLU, or + residual then ReLU) in the same pass: every batch-norm forward's last pass.
    private func normalizeRows(_ rows: Int, channels ch: Int, x xp: UnsafeMutablePointer<Float>, y yp: UnsafeMutablePointer<Float>,
                               scale: UnsafeMutablePointer<Float>, offset: UnsafeMutablePointer<Float>,
                               then epilogue: BatchNormEpilogue) {
        let scaleP = UnsafePointer(scale), offsetP = UnsafePointer(offset)
        parallelFor(rows, grain: Self.grain(itemCost: ch)) { rows in
            for r in rows {
                let p = xp + r * ch, o = yp + r * ch
                var c = 0
                switch epilogue {
                case .none:
                    while c + 8 <= ch {
                        store8(load8(p + c) * load8(scaleP + c) + load8(offsetP + c), o + c)
                        c += 8
                    }
                    for c in c..<ch { o[c] = p[c] * scaleP[c] + offsetP[c] }
                case .relu:
                    while c + 8 <= ch {
                        store8(relu8(load8(p + c) * load8(scaleP + c) + load8(offsetP + c)), o + c)
                        c += 8
                    }
                    for c in c..<ch { o[c] = relu1(p[c] * scaleP[c] + offsetP[c]) }
                case .addReLU(let residual):
                    let s = residual + r * ch
                    while c + 8 <= ch {
                        store8(relu8(load8(p + c) * load8(scaleP + c) + load8(offsetP + c) + load8(s + c)), o + c)
                        c += 8
                    }
                    for c in c..<ch { o[c] = relu1(p[c] * scaleP[c] + offsetP[c] + s[c]) }
                }
            }
        }
    }
}

extension CPUBackend {
    /// `out[k] = sum of column k` of the (rows, cols) matrix at `p`, in Double across blocks
    /// (`chunkedSums`: the same result for any thread count). biasBackward's reduction.
    func columnSums(_ p: UnsafePointer<Float>, rows: Int, cols: Int, slot: Int, into out: UnsafeMutablePointer<Double>) {
        chunkedSums(rows: rows, channels: cols, width: cols, slot: slot, into: out) { block, f in
            var c = 0
            while c + 8 <= cols {
                var s = SIMD8<Float>()
                for r in block { s += load8(p + r * cols + c) }
                store8(load8(f + c) + s, f + c)
                c += 8
            }
            for c in c..<cols {
                for r in block { f[c] += p[r * cols + c] }
            }
        }
    }
}

/// Eight floats from (possibly unaligned) memory, and back: the kernels above name their vectors
/// because the compiler cannot prove that the rows and the per-channel arrays do not overlap.
@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `max(v, 0)` as `reluForward` computes it (`v < 0 ? 0 : v`: NaN and -0 pass), so that the fused
/// kernels give the unfused composition's bits.
@inline(__always)
private func relu8(_ v: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: 0, where: v .< 0) }

@inline(__always)
private func relu1(_ v: Float) -> Float { v < 0 ? 0 : v }

/// What the forward does to the normalised value before it stores it: nothing, ReLU, or add the
/// residual (same layout as x) and then ReLU.
private enum BatchNormEpilogue {
    case none
    case relu
    case addReLU(UnsafeMutablePointer<Float>)
}

/// `scale = gamma * invStd`, `offset = beta - mean * scale` (in Double, rounded once each): the
/// per-channel map the forwards apply.
@inline(__always)
private func normalizingAffine(gamma: Float, beta: Float, mean: Float, invStd: Float) -> (Float, Float) {
    let sc = Double(gamma) * Double(invStd)
    return (Float(sc), Float(Double(beta) - Double(mean) * sc))
}

