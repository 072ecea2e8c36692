// Batch norm per channel c over N*H*W values. x is (N, C) or channels-last (N, C, H, W): both
// are R rows of C values (CPULayout.swift), so every pass runs along rows with the channel as
// the inner, vectorised index.
// Statistics are two-pass and accumulated in Double: inputs with a large mean relative to their
// spread (common after a ReLU) lose nothing to cancellation. The rows are cut into chunks whose
// size depends only on (R, C); each chunk sums into its own row of per-channel partials and the
// partials are added in chunk order, so results do not depend on the thread count.
extension CPUBackend {
    @inline(__always)
    private func checkChannels(_ t: Tensor, _ ch: Int, _ what: StaticString) {
        precondition(t.count == ch, "\(what): \(t) for \(ch) channels")
    }

    /// Rows per statistics chunk: about 16K elements, so a chunk is worth a thread.
    @inline(__always)
    private static func chunkRows(channels: Int) -> Int { max(8, 16384 / max(1, channels)) }

    /// Per-channel sums over the rows of chunks: `terms(row, partial)` adds row `row`'s terms
    /// into `partial` (`width` Doubles per chunk, zeroed first); then the chunks' partials are
    /// added in order into `out` (`width` Doubles).
    @inline(__always)
    private func chunkedSums(rows: Int, channels: Int, width: Int, slot: Int, into out: UnsafeMutablePointer<Double>,
                             _ terms: (Int, UnsafeMutablePointer<Double>) -> Void) {
        let per = Self.chunkRows(channels: channels)
        let chunks = max(1, (rows + per - 1) / per)
        let raw = UnsafeMutableRawPointer(workspace.buffer(slot: slot, count: 2 * chunks * width))
        let partials = raw.bindMemory(to: Double.self, capacity: chunks * width)
        parallelFor(chunks) { range in
            for chunk in range {
                let p = partials + chunk * width
                p.update(repeating: 0, count: width)
                for r in (chunk * per)..<min(rows, (chunk + 1) * per) { terms(r, p) }
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
        let (_, ch, _, _) = x.nchw
        let m = x.count / max(1, ch)
        precondition(y.shape == x.shape, "batchNormForwardTraining: y \(y.shape) for x \(x.shape)")
        checkChannels(gamma, ch, "batchNormForwardTraining")
        checkChannels(beta, ch, "batchNormForwardTraining")
        checkChannels(runningMean, ch, "batchNormForwardTraining")
        checkChannels(runningVar, ch, "batchNormForwardTraining")
        checkChannels(saveMean, ch, "batchNormForwardTraining")
        checkChannels(saveInvStd, ch, "batchNormForwardTraining")
        // PyTorch refuses this too: the unbiased variance of one value is undefined.
        precondition(m > 1, "batchNormForwardTraining needs more than one value per channel, x \(x.shape)")
        let xp = x.hostPointer, yp = y.hostPointer
        let gp = gamma.hostPointer, bp = beta.hostPointer
        let rmp = runningMean.hostPointer, rvp = runningVar.hostPointer
        let smp = saveMean.hostPointer, sip = saveInvStd.hostPointer
        let mom = Double(momentum), eps = Double(epsilon)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * ch) { buffer in
            let mean = buffer.baseAddress!, q = mean + ch
            chunkedSums(rows: m, channels: ch, width: ch, slot: bnPartialsSlot, into: mean) { r, p in
                let row = xp + r * ch
                for c in 0..<ch { p[c] += Double(row[c]) }
            }
            for c in 0..<ch { mean[c] /= Double(m) }
            chunkedSums(rows: m, channels: ch, width: ch, slot: bnPartialsSlot, into: q) { r, p in
                let row = xp + r * ch
                for c in 0..<ch { let d = Double(row[c]) - mean[c]; p[c] += d * d }
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * ch) { affine in
                let scale = affine.baseAddress!, meanF = scale + ch
                for c in 0..<ch {
                    let invStd = 1 / (q[c] / Double(m) + eps).squareRoot()
                    meanF[c] = Float(mean[c])
                    scale[c] = Float(Double(gp[c]) * invStd)
                    smp[c] = meanF[c]
                    sip[c] = Float(invStd)
                    let unbiased = q[c] / Double(m - 1)
                    rmp[c] = Float((1 - mom) * Double(rmp[c]) + mom * mean[c])
                    rvp[c] = Float((1 - mom) * Double(rvp[c]) + mom * unbiased)
                }
                let scaleP = UnsafePointer(scale), meanP = UnsafePointer(meanF)
                parallelFor(m, grain: Self.grain(itemCost: ch)) { rows in
                    for r in rows {
                        let p = xp + r * ch, o = yp + r * ch
                        for c in 0..<ch { o[c] = (p[c] - meanP[c]) * scaleP[c] + bp[c] }
                    }
                }
            }
        }
    }

    /// `y = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta`.
    public func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        let (_, ch, _, _) = x.nchw
        let m = x.count / max(1, ch)
        precondition(y.shape == x.shape, "batchNormForwardInference: y \(y.shape) for x \(x.shape)")
        checkChannels(gamma, ch, "batchNormForwardInference")
        checkChannels(beta, ch, "batchNormForwardInference")
        checkChannels(runningMean, ch, "batchNormForwardInference")
        checkChannels(runningVar, ch, "batchNormForwardInference")
        let xp = x.hostPointer, yp = y.hostPointer
        let gp = gamma.hostPointer, bp = beta.hostPointer
        let rmp = runningMean.hostPointer, rvp = runningVar.hostPointer
        withUnsafeTemporaryAllocation(of: Float.self, capacity: ch) { buffer in
            let scale = buffer.baseAddress!
            for c in 0..<ch { scale[c] = gp[c] / (rvp[c] + epsilon).squareRoot() }
            let scaleP = UnsafePointer(scale)
            parallelFor(m, grain: Self.grain(itemCost: ch)) { rows in
                for r in rows {
                    let p = xp + r * ch, o = yp + r * ch
                    for c in 0..<ch { o[c] = (p[c] - rmp[c]) * scaleP[c] + bp[c] }
                }
            }
        }
    }

    /// With xhat = (x - mean) * invStd over the channel's M = N*H*W values:
    /// `dbeta = sum dy`, `dgamma = sum dy*xhat`, `dx = gamma*invStd * (dy - dbeta/M - xhat*dgamma/M)`.
    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
        let (_, ch, _, _) = x.nchw
        let m = x.count / max(1, ch)
        precondition(dy.shape == x.shape && dx.shape == x.shape,
                     "batchNormBackward: dy \(dy.shape), dx \(dx.shape) for x \(x.shape)")
        checkChannels(gamma, ch, "batchNormBackward")
        checkChannels(saveMean, ch, "batchNormBackward")
        checkChannels(saveInvStd, ch, "batchNormBackward")
        checkChannels(gradGamma, ch, "batchNormBackward")
        checkChannels(gradBeta, ch, "batchNormBackward")
        let xp = x.hostPointer, dyp = dy.hostPointer, dxp = dx.hostPointer
        let gp = gamma.hostPointer, smp = saveMean.hostPointer, sip = saveInvStd.hostPointer
        let dgp = gradGamma.hostPointer, dbp = gradBeta.hostPointer
        let accumulate = mode == .accumulate
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * ch) { buffer in
            // sums[0..<C]: sum dy; sums[C..<2C]: sum dy * xhat.
            let sums = buffer.baseAddress!
            chunkedSums(rows: m, channels: ch, width: 2 * ch, slot: bnPartialsSlot, into: sums) { r, p in
                let xr = xp + r * ch, dr = dyp + r * ch, q = p + ch
                for c in 0..<ch {
                    let g = Double(dr[c])
                    p[c] += g
                    q[c] += g * Double((xr[c] - smp[c]) * sip[c])
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
                        let xr = xp + r * ch, dr = dyp + r * ch, o = dxp + r * ch
                        for c in 0..<ch {
                            let xhat = (xr[c] - smp[c]) * sip[c]
                            o[c] = s[c] * (dr[c] - a[c] - xhat * b[c])
                        }
                    }
                }
            }
        }
    }
}

/// Workspace slot of the per-chunk statistics partials.
private let bnPartialsSlot = 0xB0_00
