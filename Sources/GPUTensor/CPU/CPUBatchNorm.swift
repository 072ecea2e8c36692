// Batch norm per channel c over N and H*W; x is (N, C) or (N, C, H, W), read as (N, C, HW).
// Threads split channels, so each thread owns its channels' statistics and outputs.
// Statistics are two-pass and accumulated in Double: inputs with a large mean relative to their
// spread (common after a ReLU) lose nothing to cancellation.
extension CPUBackend {
    @inline(__always)
    private func checkChannels(_ t: Tensor, _ ch: Int, _ what: StaticString) {
        precondition(t.count == ch, "\(what): \(t) for \(ch) channels")
    }

    public func batchNormForwardTraining(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, saveMean: Tensor, saveInvStd: Tensor, momentum: Float, epsilon: Float) {
        let (n, ch, h, w) = x.nchw
        let hw = h * w, m = n * hw
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
        parallelFor(ch, grain: Self.grain(itemCost: 3 * m)) { channels in
            for c in channels {
                var s = 0.0
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw
                    for k in 0..<hw { s += Double(p[k]) }
                }
                let mean = s / Double(m)
                var q = 0.0
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw
                    for k in 0..<hw { let d = Double(p[k]) - mean; q += d * d }
                }
                let variance = q / Double(m)
                let invStd = 1 / (variance + eps).squareRoot()
                let meanF = Float(mean), scale = Float(Double(gp[c]) * invStd), shift = bp[c]
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw, o = yp + (i * ch + c) * hw
                    for k in 0..<hw { o[k] = (p[k] - meanF) * scale + shift }
                }
                smp[c] = meanF
                sip[c] = Float(invStd)
                let unbiased = q / Double(m - 1)
                rmp[c] = Float((1 - mom) * Double(rmp[c]) + mom * mean)
                rvp[c] = Float((1 - mom) * Double(rvp[c]) + mom * unbiased)
            }
        }
    }

    /// `y = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta`.
    public func batchNormForwardInference(input x: Tensor, output y: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, epsilon: Float) {
        let (n, ch, h, w) = x.nchw
        let hw = h * w
        precondition(y.shape == x.shape, "batchNormForwardInference: y \(y.shape) for x \(x.shape)")
        checkChannels(gamma, ch, "batchNormForwardInference")
        checkChannels(beta, ch, "batchNormForwardInference")
        checkChannels(runningMean, ch, "batchNormForwardInference")
        checkChannels(runningVar, ch, "batchNormForwardInference")
        let xp = x.hostPointer, yp = y.hostPointer
        let gp = gamma.hostPointer, bp = beta.hostPointer
        let rmp = runningMean.hostPointer, rvp = runningVar.hostPointer
        parallelFor(n * ch, grain: Self.grain(itemCost: hw + 8)) { rows in
            for row in rows {
                let c = row % ch
                let scale = gp[c] / (rvp[c] + epsilon).squareRoot(), mean = rmp[c], shift = bp[c]
                let p = xp + row * hw, o = yp + row * hw
                for k in 0..<hw { o[k] = (p[k] - mean) * scale + shift }
            }
        }
    }

    /// With xhat = (x - mean) * invStd over the channel's M = N*H*W values:
    /// `dbeta = sum dy`, `dgamma = sum dy*xhat`, `dx = gamma*invStd * (dy - dbeta/M - xhat*dgamma/M)`.
    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode) {
        let (n, ch, h, w) = x.nchw
        let hw = h * w, m = n * hw
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
        parallelFor(ch, grain: Self.grain(itemCost: 3 * m)) { channels in
            for c in channels {
                let mean = smp[c], invStd = sip[c]
                var sumDy = 0.0, sumDyXhat = 0.0
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw, d = dyp + (i * ch + c) * hw
                    for k in 0..<hw {
                        let g = Double(d[k])
                        sumDy += g
                        sumDyXhat += g * Double((p[k] - mean) * invStd)
                    }
                }
                let meanDy = Float(sumDy / Double(m)), meanDyXhat = Float(sumDyXhat / Double(m))
                let scale = gp[c] * invStd
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw, d = dyp + (i * ch + c) * hw, o = dxp + (i * ch + c) * hw
                    for k in 0..<hw {
                        let xhat = (p[k] - mean) * invStd
                        o[k] = scale * (d[k] - meanDy - xhat * meanDyXhat)
                    }
                }
                if accumulate {
                    dgp[c] += Float(sumDyXhat)
                    dbp[c] += Float(sumDy)
                } else {
                    dgp[c] = Float(sumDyXhat)
                    dbp[c] = Float(sumDy)
                }
            }
        }
    }
}
