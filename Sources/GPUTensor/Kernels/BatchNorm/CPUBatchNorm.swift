// Batch norm per channel c over N*H*W values. x is (N, C) or channels-last (N, C, H, W): both
// are R rows of C values (CPULayout.swift), so every pass runs along rows with the channel as
// the inner, vectorised index.
// Statistics take one pass over x: sums of d = x - K and d^2 with K a per-channel shift (the
// first row's value), so that inputs with a large mean relative to their spread (common after a
// ReLU) lose nothing to cancellation in var = (S2 - S1^2/M) / M. The sums run in float32 over
// blocks of `blockRows` rows (8-wide vectors) and in Double across blocks. The rows are cut into
// chunks whose size depends only on (R, C); each chunk sums into its own row of per-channel
// partials and the partials are added in chunk order, so results do not depend on the thread
// count. Per step, forward training reads x twice and writes y once (it was 3 reads + 1 write).
// The fused variants (bench/NOTES.md section 10) apply ReLU (and a residual add) in the pass that
// writes y, and ReLU's mask inside the backward's two passes, recomputed from x rather than read
// from y; the unfused composition gives the same bits.
extension CPUBackend {
    /// Rows per statistics chunk: about 16K elements, so a chunk is worth a thread.
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

    public func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        // Also refuses one value per channel (as PyTorch does: its unbiased variance is undefined).
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd)
        batchNormTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                          saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon, then: .none)
    }

    /// `max(bn(x), 0)` in the pass that writes y: the ReLU costs no pass of its own.
    public func batchNormReLUForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                             "batchNormReLUForwardTraining")
        batchNormTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                          saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon, then: .relu)
    }

    /// `max(bn(x) + residual, 0)` in the pass that writes y: the add and the ReLU cost no passes.
    public func batchNormAddReLUForwardTraining(input x: Tensor, residual: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        ShapeChecks.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean,
                                             runningVar: runningVar, saveMean: saveMean, saveInvStd: saveInvStd,
                                             "batchNormAddReLUForwardTraining")
        ShapeChecks.batchNormResidual(input: x, residual: residual, output: y, "batchNormAddReLUForwardTraining")
        batchNormTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar,
                          saveMean: saveMean, saveInvStd: saveInvStd, momentum: momentum, epsilon: epsilon,
                          then: .addReLU(residual.hostPointer))
    }

    /// The training forward, with `epilogue` applied as y is written.
    private func batchNormTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float, then epilogue: BatchNormEpilogue) {
        let (_, ch, _, _) = x.nchw
        let m = x.count / max(1, ch)
        let xp = x.hostPointer, yp = y.hostPointer
        let gp = gamma.hostPointer, bp = beta.hostPointer
        let rmp = runningMean.hostPointer, rvp = runningVar.hostPointer
        let smp = saveMean.hostPointer, sip = saveInvStd.hostPointer
        let mom = Double(momentum), eps = Double(epsilon)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * ch) { buffer in
            // sums[0..<C]: sum of d = x - K; sums[C..<2C]: sum of d^2, with K = x's first row.
            let sums = buffer.baseAddress!
            let shift = UnsafePointer(xp)
            chunkedSums(rows: m, channels: ch, width: 2 * ch, slot: bnPartialsSlot, into: sums) { rows, f in
                let g = f + ch
                // Eight channels at a time down the block's rows, the sums in registers.
                var c = 0
                while c + 8 <= ch {
                    let k = load8(shift + c)
                    var s1 = SIMD8<Float>(), s2 = SIMD8<Float>()
                    for r in rows {
                        let d = load8(xp + r * ch + c) - k
                        s1 += d
                        s2 += d * d
                    }
                    store8(load8(f + c) + s1, f + c)
                    store8(load8(g + c) + s2, g + c)
                    c += 8
                }
                for c in c..<ch {
                    for r in rows {
                        let d = xp[r * ch + c] - shift[c]
                        f[c] += d
                        g[c] += d * d
                    }
                }
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * ch) { affine in
                let scale = affine.baseAddress!, offset = scale + ch
                for c in 0..<ch {
                    let meanShift = sums[c] / Double(m)
                    let q = max(0, sums[ch + c] - sums[c] * meanShift)   // sum of (x - mean)^2
                    let mean = Double(shift[c]) + meanShift
                    let invStd = 1 / (q / Double(m) + eps).squareRoot()
                    smp[c] = Float(mean)
                    sip[c] = Float(invStd)
                    // From the saved (float) statistics, so that the fused backward recomputes
                    // the same map, and with it ReLU's mask, from x.
                    (scale[c], offset[c]) = normalizingAffine(gamma: gp[c], beta: bp[c], mean: smp[c], invStd: sip[c])
                    let unbiased = q / Double(m - 1)
                    rmp[c] = Float((1 - mom) * Double(rmp[c]) + mom * mean)
                    rvp[c] = Float((1 - mom) * Double(rvp[c]) + mom * unbiased)
                }
                normalizeRows(m, channels: ch, x: xp, y: yp, scale: scale, offset: offset, then: epilogue)
            }
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

    /// With xhat = (x - mean) * invStd over the channel's M = N*H*W values:
    /// `dbeta = sum dy`, `dgamma = sum dy*xhat`, `dx = gamma*invStd * (dy - dbeta/M - xhat*dgamma/M)`.
    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        ShapeChecks.batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                      gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta)
        batchNormBackward(input: x, gradOutput: dy, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                          gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode)
    }

    /// The backward with dy masked by ReLU (`y > 0 ? dy : 0`, reluBackward's select) inside the
    /// reduction and the dx pass: no pass of its own, and dy is left as it was. The mask is
    /// recomputed from x: y > 0 exactly when `x * scale + offset > 0` with the forward's own float
    /// scale and offset (`normalizingAffine` of the saved statistics; NaN and -0 give 0 either
    /// way), so y is not read: each pass reads x and dy, as the plain backward does.
    public func batchNormReLUBackward(input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gamma: Tensor, beta: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        ShapeChecks.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: saveMean,
                                          saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta)
        let ch = x.nchw.c
        let gp = gamma.hostPointer, bp = beta.hostPointer, smp = saveMean.hostPointer, sip = saveInvStd.hostPointer
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * ch) { affine in
            let scale = affine.baseAddress!, offset = scale + ch
            for c in 0..<ch {
                (scale[c], offset[c]) = normalizingAffine(gamma: gp[c], beta: bp[c], mean: smp[c], invStd: sip[c])
            }
            batchNormBackward(x, MaskedGradient(dy: dy.hostPointer, scale: scale, offset: offset), gamma: gamma,
                              saveMean: saveMean, saveInvStd: saveInvStd, gradInput: dx, gradGamma: gradGamma,
                              gradBeta: gradBeta, mode: mode)
        }
    }

    private func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode) {
        batchNormBackward(x, PlainGradient(dy: dy.hostPointer), gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                          gradInput: dx, gradGamma: gradGamma, gradBeta: gradBeta, mode: mode)
    }

    /// Generic over how dy is read, so that each variant is specialised (no per-element branch).
    @inline(__always)
    private func batchNormBackward<G: BatchNormGradient>(_ x: Tensor, _ grad: G, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode) {
        let (_, ch, _, _) = x.nchw
        let m = x.count / max(1, ch)
        let xp = x.hostPointer, dxp = dx.hostPointer
        let gp = gamma.hostPointer, smp = saveMean.hostPointer, sip = saveInvStd.hostPointer
        let dgp = gradGamma.hostPointer, dbp = gradBeta.hostPointer
        let accumulate = mode == .accumulate
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * ch) { buffer in
            // sums[0..<C]: sum dy; sums[C..<2C]: sum dy * xhat.
            let sums = buffer.baseAddress!
            chunkedSums(rows: m, channels: ch, width: 2 * ch, slot: bnPartialsSlot, into: sums) { rows, f in
                let g = f + ch
                var c = 0
                while c + 8 <= ch {
                    let mean = load8(smp + c), invStd = load8(sip + c)
                    var s1 = SIMD8<Float>(), s2 = SIMD8<Float>()
                    for r in rows {
                        let xv = load8(xp + r * ch + c)
                        let d = grad.load8(r * ch + c, channel: c, x: xv)
                        s1 += d
                        s2 += d * ((xv - mean) * invStd)
                    }
                    store8(load8(f + c) + s1, f + c)
                    store8(load8(g + c) + s2, g + c)
                    c += 8
                }
                for c in c..<ch {
                    for r in rows {
                        let xs = xp[r * ch + c]
                        let d = grad.load1(r * ch + c, channel: c, x: xs)
                        f[c] += d
                        g[c] += d * ((xs - smp[c]) * sip[c])
                    }
                }
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * ch) { affine in
                let meanDy = affine.baseAddress!, meanDyXhat = meanDy + ch, scale = meanDyXhat + ch
                for c in 0..<ch {
                    meanDy[c] = Float(sums[c] / Double(m))
                    meanDyXhat[c] = Float(sums[ch + c] / Double(m))
                    scale[c] = gp[c] * sip[c]
                    if accumulate {
                        dgp[c] += Float(sums[ch + c])
                        dbp[c] += Float(sums[c])
                    } else {
                        dgp[c] = Float(sums[ch + c])
                        dbp[c] = Float(sums[c])
                    }
                }
                let a = UnsafePointer(meanDy), b = UnsafePointer(meanDyXhat), s = UnsafePointer(scale)
                parallelFor(m, grain: Self.grain(itemCost: 2 * ch)) { rows in
                    for r in rows {
                        let xr = xp + r * ch, o = dxp + r * ch, row = r * ch
                        var c = 0
                        while c + 8 <= ch {
                            let xv = load8(xr + c)
                            let xhat = (xv - load8(smp + c)) * load8(sip + c)
                            let d = grad.load8(row + c, channel: c, x: xv)
                            store8(load8(s + c) * (d - load8(a + c) - xhat * load8(b + c)), o + c)
                            c += 8
                        }
                        for c in c..<ch {
                            let xhat = (xr[c] - smp[c]) * sip[c]
                            o[c] = s[c] * (grad.load1(row + c, channel: c, x: xr[c]) - a[c] - xhat * b[c])
                        }
                    }
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
/// per-channel map the training forward applies, computed from the saved float statistics so that
/// the fused backward can recompute it bit for bit.
@inline(__always)
private func normalizingAffine(gamma: Float, beta: Float, mean: Float, invStd: Float) -> (Float, Float) {
    let sc = Double(gamma) * Double(invStd)
    return (Float(sc), Float(Double(beta) - Double(mean) * sc))
}

/// How batch norm's backward reads dy (element i of channel c, whose input is x): as it is, or
/// masked by ReLU.
private protocol BatchNormGradient {
    func load8(_ i: Int, channel c: Int, x: SIMD8<Float>) -> SIMD8<Float>
    func load1(_ i: Int, channel c: Int, x: Float) -> Float
}

private struct PlainGradient: BatchNormGradient {
    let dy: UnsafeMutablePointer<Float>
    @inline(__always) func load8(_ i: Int, channel c: Int, x: SIMD8<Float>) -> SIMD8<Float> { GPUTensor.load8(dy + i) }
    @inline(__always) func load1(_ i: Int, channel c: Int, x: Float) -> Float { dy[i] }
}

/// `y > 0 ? dy : 0` (reluBackward's select), with y's sign recomputed from x as the fused forward
/// computed y: `x * scale + offset`, then `relu` (positive exactly when that is).
private struct MaskedGradient: BatchNormGradient {
    let dy: UnsafeMutablePointer<Float>
    let scale: UnsafeMutablePointer<Float>
    let offset: UnsafeMutablePointer<Float>
    @inline(__always) func load8(_ i: Int, channel c: Int, x: SIMD8<Float>) -> SIMD8<Float> {
        let v = x * GPUTensor.load8(scale + c) + GPUTensor.load8(offset + c)
        return SIMD8<Float>(repeating: 0).replacing(with: GPUTensor.load8(dy + i), where: v .> 0)
    }
    @inline(__always) func load1(_ i: Int, channel c: Int, x: Float) -> Float {
        let g = dy[i]
        return x * scale[c] + offset[c] > 0 ? g : 0
    }
}

/// Workspace slot of the per-chunk statistics partials.
private let bnPartialsSlot = 0xB0_00
