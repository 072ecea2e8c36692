// Dropout on the CPU: the mask from the Philox stream of Random/CPURandom.swift (`forEachUniform`).
extension CPUBackend {
    /// `mask_i = u_i >= p ? 1/(1-p) : 0` (the scale rounded to float once), `y = x * mask`.
    public func dropoutForward(_ x: Tensor, output y: Tensor, mask: Tensor, probability p: Float, seed: UInt64, counter: UInt64) {
        ShapeChecks.dropoutForward(x, output: y, mask: mask, probability: p)
        // The CPU's own: Philox indexes logical positions, so every tensor must map them alike.
        precondition(Self.storedAlike(x.shape, y.shape) && Self.storedAlike(x.shape, mask.shape),
                     "dropoutForward \(x) -> \(y), mask \(mask): a channels-last tensor needs its own shape")
        let xp = x.hostPointer, yp = y.hostPointer, mp = mask.hostPointer
        let keep: Float = 1 / (1 - p)
        let at = StorageIndex(x.shape)
        forEachUniform(x.count, seed: seed, counter: counter) { i, u in
            let m: Float = u >= p ? keep : 0
            let k = at(i)
            mp[k] = m
            yp[k] = xp[k] * m
        }
    }

    public func dropoutBackward(gradOutput dy: Tensor, mask: Tensor, gradInput dx: Tensor) {
        ShapeChecks.dropoutBackward(gradOutput: dy, mask: mask, gradInput: dx)
        let dyp = dy.hostPointer, mp = mask.hostPointer, dxp = dx.hostPointer
        parallelFor(dy.count, grain: Self.minWorkPerThread) { r in
            for i in r { dxp[i] = dyp[i] * mp[i] }
        }
    }
}
