// Pooling over (N, C, H, W) planes; every loop runs over whole planes so threads never share
// an output element. Window (oh, ow) covers rows oh*stride - pad ..< +window, clipped to the image.
extension CPUBackend {
    /// Compares dimensions one by one: building `g.inputShape` would allocate on every call.
    @inline(__always)
    private static func isShape(_ t: Tensor, _ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Bool {
        t.rank == 4 && t.shape[0] == n && t.shape[1] == c && t.shape[2] == h && t.shape[3] == w
    }

    @inline(__always)
    private func checkPool(_ g: PoolGeometry, input x: Tensor, output y: Tensor, _ what: StaticString) {
        precondition(Self.isShape(x, g.batch, g.channels, g.height, g.width)
                     && Self.isShape(y, g.batch, g.channels, g.outHeight, g.outWidth),
                     "\(what): x \(x.shape), y \(y.shape) for pool \(g.inputShape) -> \(g.outputShape)")
    }

    /// Whether max pooling replaces the window's running maximum `best` by `v`: when v is
    /// larger, or v is the window's first NaN. Written without short-circuit branches so the
    /// callers compile to selects: on real activations `v > best` is a coin flip, and the
    /// branchy `if v > best || (v != v && best == best)` mispredicted about every other element.
    @inline(__always)
    private static func maxPoolPick(_ best: Float, _ v: Float) -> Bool {
        // best is NaN: keep it. Otherwise take v unless v <= best (so a NaN v is taken).
        // Same decisions as `v > best || (v != v && best == best)`.
        best == best && !(v <= best)
    }

    /// Padding is -infinity; NaN wins (as in PyTorch); ties keep the first (row-major) maximum.
    public func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        checkPool(g, input: x, output: y, "maxPoolForward")
        let (h, w, oh, ow) = (g.height, g.width, g.outHeight, g.outWidth)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(g.batch * g.channels, grain: Self.grain(itemCost: oh * ow * k * k)) { planes in
            for plane in planes {
                let xin = xp + plane * h * w, yout = yp + plane * oh * ow
                if k == 2 && s == 2 && pad == 0 {
                    // The common 2x2/2 pool, unrolled: the same picks in the same order.
                    for i in 0..<oh {
                        let a = xin + 2 * i * w, b = a + w, o = yout + i * ow
                        for j in 0..<ow {
                            var best = a[2 * j]
                            best = Self.maxPoolPick(best, a[2 * j + 1]) ? a[2 * j + 1] : best
                            best = Self.maxPoolPick(best, b[2 * j]) ? b[2 * j] : best
                            best = Self.maxPoolPick(best, b[2 * j + 1]) ? b[2 * j + 1] : best
                            o[j] = best
                        }
                    }
                    continue
                }
                for i in 0..<oh {
                    let r0 = max(i * s - pad, 0), r1 = min(i * s - pad + k, h)
                    for j in 0..<ow {
                        let c0 = max(j * s - pad, 0), c1 = min(j * s - pad + k, w)
                        var best = -Float.infinity
                        for r in r0..<r1 {
                            for c in c0..<c1 {
                                let v = xin[r * w + c]
                                best = Self.maxPoolPick(best, v) ? v : best
                            }
                        }
                        yout[i * ow + j] = best
                    }
                }
            }
        }
    }

    /// Each dy goes to the first maximal input of its window (recomputed from x, same rule as
    /// forward); overlapping windows add.
    public func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        checkPool(g, input: x, output: y, "maxPoolBackward")
        checkPool(g, input: dx, output: dy, "maxPoolBackward")
        let (h, w, oh, ow) = (g.height, g.width, g.outHeight, g.outWidth)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let xp = x.hostPointer, dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(g.batch * g.channels, grain: Self.grain(itemCost: oh * ow * k * k)) { planes in
            for plane in planes {
                let xin = xp + plane * h * w, din = dxp + plane * h * w, dout = dyp + plane * oh * ow
                din.update(repeating: 0, count: h * w)
                if k == 2 && s == 2 && pad == 0 {
                    // The common 2x2/2 pool, unrolled: the same picks in the same order.
                    for i in 0..<oh {
                        let r = 2 * i * w
                        for j in 0..<ow {
                            let p = r + 2 * j
                            var best = xin[p], at = p
                            var take = Self.maxPoolPick(best, xin[p + 1])
                            best = take ? xin[p + 1] : best; at = take ? p + 1 : at
                            take = Self.maxPoolPick(best, xin[p + w])
                            best = take ? xin[p + w] : best; at = take ? p + w : at
                            take = Self.maxPoolPick(best, xin[p + w + 1])
                            at = take ? p + w + 1 : at
                            din[at] += dout[i * ow + j]     // onto 0, as the general path (keeps -0 as +0)
                        }
                    }
                    continue
                }
                for i in 0..<oh {
                    let r0 = max(i * s - pad, 0), r1 = min(i * s - pad + k, h)
                    for j in 0..<ow {
                        let c0 = max(j * s - pad, 0), c1 = min(j * s - pad + k, w)
                        var best = -Float.infinity, at = r0 * w + c0
                        for r in r0..<r1 {
                            for c in c0..<c1 {
                                let v = xin[r * w + c], take = Self.maxPoolPick(best, v)
                                best = take ? v : best
                                at = take ? r * w + c : at
                            }
                        }
                        din[at] += dout[i * ow + j]
                    }
                }
            }
        }
    }

    /// Mean over the window with zero padding counted (PyTorch count_include_pad): divisor window².
    public func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        checkPool(g, input: x, output: y, "avgPoolForward")
        let (h, w, oh, ow) = (g.height, g.width, g.outHeight, g.outWidth)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let inv = 1 / Float(k * k)
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(g.batch * g.channels, grain: Self.grain(itemCost: oh * ow * k * k)) { planes in
            for plane in planes {
                let xin = xp + plane * h * w, yout = yp + plane * oh * ow
                for i in 0..<oh {
                    let r0 = max(i * s - pad, 0), r1 = min(i * s - pad + k, h)
                    for j in 0..<ow {
                        let c0 = max(j * s - pad, 0), c1 = min(j * s - pad + k, w)
                        var acc: Float = 0
                        for r in r0..<r1 {
                            for c in c0..<c1 { acc += xin[r * w + c] }
                        }
                        yout[i * ow + j] = acc * inv
                    }
                }
            }
        }
    }

    public func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        checkPool(g, input: dx, output: dy, "avgPoolBackward")
        let (h, w, oh, ow) = (g.height, g.width, g.outHeight, g.outWidth)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let inv = 1 / Float(k * k)
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(g.batch * g.channels, grain: Self.grain(itemCost: oh * ow * k * k)) { planes in
            for plane in planes {
                let din = dxp + plane * h * w, dout = dyp + plane * oh * ow
                din.update(repeating: 0, count: h * w)
                for i in 0..<oh {
                    let r0 = max(i * s - pad, 0), r1 = min(i * s - pad + k, h)
                    for j in 0..<ow {
                        let c0 = max(j * s - pad, 0), c1 = min(j * s - pad + k, w)
                        let v = dout[i * ow + j] * inv
                        for r in r0..<r1 {
                            for c in c0..<c1 { din[r * w + c] += v }
                        }
                    }
                }
            }
        }
    }

    /// x (N, C, H, W) -> y (N, C) (or (N, C, 1, 1)).
    public func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        precondition(x.rank == 4 && y.count == x.shape[0] * x.shape[1], "globalAvgPoolForward \(x) -> \(y)")
        let hw = x.shape[2] * x.shape[3]
        let inv = 1 / Float(hw)
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(y.count, grain: Self.grain(itemCost: hw)) { planes in
            for plane in planes {
                let xin = xp + plane * hw
                var acc: Float = 0
                for i in 0..<hw { acc += xin[i] }
                yp[plane] = acc * inv
            }
        }
    }

    /// dy (N, C) -> dx (N, C, H, W) = dy / (H*W) broadcast.
    public func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        precondition(dx.rank == 4 && dy.count == dx.shape[0] * dx.shape[1], "globalAvgPoolBackward \(dy) -> \(dx)")
        let hw = dx.shape[2] * dx.shape[3]
        let inv = 1 / Float(hw)
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(dy.count, grain: Self.grain(itemCost: hw)) { planes in
            for plane in planes {
                (dxp + plane * hw).update(repeating: dyp[plane] * inv, count: hw)
            }
        }
    }
}
