// Philox kernels: one 10-round block yields elements 4b ..< 4b+4, so loops run over blocks.
// Element i depends only on (seed, counter, i): results do not depend on thread count. i is the
// LOGICAL row-major index; a channels-last rank-4 tensor stores it at `StorageIndex(shape)(i)`
// (CPULayout.swift), so the CPU draws the values CUDA (NCHW) draws.
extension CPUBackend {
    /// Calls `body(i, u_i)` for every element `i` of `0..<count`, in parallel over Philox blocks
    /// (also dropout's mask, Dropout/CPUDropout.swift).
    @inline(__always)
    func forEachUniform(_ count: Int, seed: UInt64, counter: UInt64, _ body: (Int, Float) -> Void) {
        parallelFor((count + 3) / 4, grain: Self.minWorkPerThread / 16) { blocks in
            for b in blocks {
                let i = 4 * b
                if i + 4 > count {   // the last, partial block
                    for j in i..<count { body(j, Philox.uniform(seed: seed, counter: counter, index: j)) }
                    continue
                }
                let w = Philox.block(seed: seed, counter: counter, index: UInt64(b))
                body(i, Philox.unit(w.0)); body(i + 1, Philox.unit(w.1))
                body(i + 2, Philox.unit(w.2)); body(i + 3, Philox.unit(w.3))
            }
        }
    }

    /// `x_i = low + (high - low) * u_i` in float32 (no fused multiply-add).
    public func fillUniform(_ x: Tensor, low: Float, high: Float, seed: UInt64, counter: UInt64) {
        let xp = x.hostPointer
        let width = high - low
        let at = StorageIndex(x.shape)
        forEachUniform(x.count, seed: seed, counter: counter) { i, u in
            xp[at(i)] = low + width * u
        }
    }

    /// `x_i = mean + std * Philox.normal(seed, counter, i)` in float32; each block's two
    /// Box-Muller pairs are computed once.
    public func fillNormal(_ x: Tensor, mean: Float, std: Float, seed: UInt64, counter: UInt64) {
        let count = x.count, xp = x.hostPointer
        let at = StorageIndex(x.shape)
        parallelFor((count + 3) / 4, grain: Self.minWorkPerThread / 64) { blocks in
            for b in blocks {
                let i = 4 * b
                if i + 4 > count {
                    for j in i..<count { xp[at(j)] = mean + std * Philox.normal(seed: seed, counter: counter, index: j) }
                    continue
                }
                let w = Philox.block(seed: seed, counter: counter, index: UInt64(b))
                let (z0, z1) = Self.boxMuller(w.0, w.1), (z2, z3) = Self.boxMuller(w.2, w.3)
                xp[at(i)] = mean + std * z0; xp[at(i + 1)] = mean + std * z1
                xp[at(i + 2)] = mean + std * z2; xp[at(i + 3)] = mean + std * z3
            }
        }
    }

    /// The pair `Philox.normal` gives for words (a, c): same arithmetic, rounded once.
    @inline(__always)
    private static func boxMuller(_ a: UInt32, _ c: UInt32) -> (Float, Float) {
        let u1 = (Double(a) + 1.0) * (1.0 / 4_294_967_296.0)
        let u2 = Double(c) * (1.0 / 4_294_967_296.0)
        let r = (-2.0 * _log(u1)).squareRoot()
        let theta = 2.0 * Double.pi * u2
        return (Float(r * _cos(theta)), Float(r * _sin(theta)))
    }
}
