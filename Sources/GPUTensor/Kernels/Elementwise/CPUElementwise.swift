import Dispatch

extension CPUBackend {
    public func fill(_ x: Tensor, value: Float) {
        let xp = x.hostPointer
        parallelFor(x.count, grain: Self.minWorkPerThread) { r in
            (xp + r.lowerBound).update(repeating: value, count: r.count)
        }
    }

    /// `out = a + b`; out may alias a or b.
    public func add(_ a: Tensor, _ b: Tensor, output out: Tensor) {
        ShapeChecks.add(a, b, output: out)
        let ap = a.hostPointer, bp = b.hostPointer, op = out.hostPointer
        parallelFor(a.count, grain: Self.minWorkPerThread) { r in
            for i in r { op[i] = ap[i] + bp[i] }
        }
    }

    /// `out = alpha * x`; out may alias x.
    public func scale(_ x: Tensor, by alpha: Float, output out: Tensor) {
        ShapeChecks.scale(x, output: out)
        let xp = x.hostPointer, op = out.hostPointer
        parallelFor(x.count, grain: Self.minWorkPerThread) { r in
            for i in r { op[i] = alpha * xp[i] }
        }
    }

    /// `y += alpha * x`.
    public func axpy(alpha: Float, x: Tensor, y: Tensor) {
        ShapeChecks.axpy(x: x, y: y)
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(x.count, grain: Self.minWorkPerThread) { r in
            for i in r { yp[i] += alpha * xp[i] }
        }
    }

    /// The sum of all elements, accumulated in Double (one partial per thread, added in order).
    public func sum(_ x: Tensor) throws -> Float {
        let n = x.count, xp = x.hostPointer
        let parts = min(threads, max(1, n / Self.minWorkPerThread))
        if parts <= 1 { return Float(Self.sumDouble(xp, 0..<n)) }
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partial in
            OpenMPTeam.run(parts: parts) { p in
                partial[p] = Self.sumDouble(xp, (n * p / parts)..<(n * (p + 1) / parts))
            }
            var s = 0.0
            for p in 0..<parts { s += partial[p] }
            return Float(s)
        }
    }

    @inline(__always)
    static func sumDouble(_ p: UnsafeMutablePointer<Float>, _ r: Range<Int>) -> Double {
        // Four accumulators break the add dependency chain.
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = r.lowerBound
        while i + 4 <= r.upperBound {
            s0 += Double(p[i]); s1 += Double(p[i + 1]); s2 += Double(p[i + 2]); s3 += Double(p[i + 3])
            i += 4
        }
        while i < r.upperBound { s0 += Double(p[i]); i += 1 }
        return (s0 + s1) + (s2 + s3)
    }

    /// out[n] = index of the first maximum of row n of x (N, K), as a float.
    public func argmax(rows x: Tensor, output out: Tensor) {
        ShapeChecks.argmax(rows: x, output: out)
        let rows = x.shape[0], k = x.shape[1]
        let xp = x.hostPointer, op = out.hostPointer
        parallelFor(rows, grain: Self.grain(itemCost: k)) { r in
            for i in r {
                let row = xp + i * k
                var best = row[0], index = 0
                for j in 1..<k where row[j] > best { best = row[j]; index = j }
                op[i] = Float(index)
            }
        }
    }
}
