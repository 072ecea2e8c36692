// Batch norm per channel c over N and H*W; x is (N, C) or (N, C, H, W), read as (N, C, HW).
// Threads split channels, so each thread owns its channels' statistics and outputs.
// Statistics are two-pass and accumulated in Double: inputs with a large mean relative to their
// spread (common after a ReLU) lose nothing to cancellation. Each sum runs in four interleaved
// lanes (`Lanes`): one Double accumulator is a chain of dependent adds, 4 cycles each, which
// made the statistics passes latency-bound. The lane of an element depends only on its
// position in its row, so results do not depend on the thread count.
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
                var s = Lanes()
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw
                    s.add(hw) { Double(p[$0]) }
                }
                let mean = s.total / Double(m)
                var qs = Lanes()
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw
                    qs.add(hw) { let d = Double(p[$0]) - mean; return d * d }
                }
                let q = qs.total
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
    public func batchNormBackward(input x: Tensor, gradOutput dy: Tensor, gamma: Tensor, saveMean: Tensor, saveInvStd: Tensor, gradInput dx: Tensor, gradGamma: Tensor, gradBeta: Tensor, mode: GradMode, epsilon: Float) {
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
                var dySums = Lanes(), dyXhatSums = Lanes()
                for i in 0..<n {
                    let p = xp + (i * ch + c) * hw, d = dyp + (i * ch + c) * hw
                    Lanes.add(hw, &dySums, &dyXhatSums) { k in
                        let g = Double(d[k])
                        return (g, g * Double((p[k] - mean) * invStd))
                    }
                }
                let sumDy = dySums.total, sumDyXhat = dyXhatSums.total
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

/// Four Double accumulators for a sum over rows of `count` terms: term k of a row goes to lane
/// k % 4 (the last count % 4 terms to lane 0), and `total` adds the lanes in a fixed order.
private struct Lanes {
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0

    var total: Double { (s0 + s1) + (s2 + s3) }

    @inline(__always)
    mutating func add(_ count: Int, _ term: (Int) -> Double) {
        var k = 0
        while k + 4 <= count {
            s0 += term(k); s1 += term(k + 1); s2 += term(k + 2); s3 += term(k + 3)
            k += 4
        }
        while k < count { s0 += term(k); k += 1 }
    }

    /// Two sums in one pass over the row.
    @inline(__always)
    static func add(_ count: Int, _ a: inout Lanes, _ b: inout Lanes, _ terms: (Int) -> (Double, Double)) {
        var k = 0
        while k + 4 <= count {
            let t0 = terms(k), t1 = terms(k + 1), t2 = terms(k + 2), t3 = terms(k + 3)
            a.s0 += t0.0; a.s1 += t1.0; a.s2 += t2.0; a.s3 += t3.0
            b.s0 += t0.1; b.s1 += t1.1; b.s2 += t2.1; b.s3 += t3.1
            k += 4
        }
        while k < count {
            let t = terms(k)
            a.s0 += t.0; b.s0 += t.1
            k += 1
        }
    }
}
