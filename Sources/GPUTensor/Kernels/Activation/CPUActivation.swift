extension CPUBackend {
    /// `y = max(x, 0)`. NaN propagates (as in PyTorch), so a diverging run stays visible.
    public func reluForward(_ x: Tensor, output y: Tensor) {
        ShapeChecks.reluForward(x, output: y)
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(x.count, grain: Self.minWorkPerThread) { r in
            // Eight lanes at a time: the plain loop stayed scalar (`maxss` an element).
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                let v = load8(xp + i)
                store8(v.replacing(with: 0, where: v .< 0), yp + i)
                i += 8
            }
            while i < r.upperBound {
                let v = xp[i]
                yp[i] = v < 0 ? 0 : v
                i += 1
            }
        }
    }

    /// `dx = dy * (y > 0)`.
    public func reluBackward(output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.reluBackward(output: y, gradOutput: dy, gradInput: dx)
        let yp = y.hostPointer, dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(y.count, grain: Self.minWorkPerThread) { r in
            // Both loads unconditional and eight lanes at a time: a select, no branch per
            // element (real activations are about half positive, so a branch mispredicts).
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                store8(SIMD8<Float>(repeating: 0).replacing(with: load8(dyp + i), where: load8(yp + i) .> 0), dxp + i)
                i += 8
            }
            while i < r.upperBound {
                let g = dyp[i]
                dxp[i] = yp[i] > 0 ? g : 0
                i += 1
            }
        }
    }
}
