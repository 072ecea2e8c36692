// Pooling over channels-last (N, C, H, W) tensors (stored NHWC, CPULayout.swift): the channel is
// the inner loop. Window (oh, ow) covers rows oh*stride - pad ..< +window, clipped to the image.
//
// Max pooling saves its window positions: the training forward writes, per output element, the
// position of its window's maximum (one byte, r * window + c in the window as if padded: oneDNN's
// workspace encoding), and the backward routes dy from those bytes without reading x. Until then
// the backward recomputed every window's maximum from x (bench/NOTES.md section 12 for the
// measurements, and why these are our kernels rather than oneDNN's: its max pooling drops NaN).
extension CPUBackend {
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

    /// `maxPoolPick` for eight lanes.
    @inline(__always)
    private static func maxPoolPick8(_ best: SIMD8<Float>, _ v: SIMD8<Float>) -> SIMDMask<SIMD8<Int32>> {
        (best .== best) .& .!(v .<= best)
    }

    /// One byte per output element (N, Ho, Wo, C order), in float32 elements rounded up.
    public func maxPoolWorkspaceCount(_ g: PoolGeometry) -> Int {
        precondition(g.window * g.window <= 256, "CPU max pooling saves window positions in a byte: window \(g.window) > 16")
        return (g.batch * g.outHeight * g.outWidth * g.channels + 3) / 4
    }

    /// Padding is -infinity; NaN wins (as in PyTorch); ties keep the first (row-major) maximum.
    /// Channels-last: each output pixel's window is scanned in row-major order with the channels
    /// as the inner, vectorised loop; threads split output rows. With a workspace, each output's
    /// window position goes to its byte there.
    public func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?) {
        ShapeChecks.pool(g, input: x, output: y, "maxPoolForward")
        if let workspace { ShapeChecks.maxPoolWorkspace(workspace, count: maxPoolWorkspaceCount(g), "maxPoolForward") }
        let (h, w, oh, ow, ch) = (g.height, g.width, g.outHeight, g.outWidth, g.channels)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let xp = x.hostPointer, yp = y.hostPointer
        let positions = workspace.map { UnsafeMutableRawPointer($0.hostPointer).assumingMemoryBound(to: UInt8.self) }
        parallelFor(g.batch * oh, grain: Self.grain(itemCost: ow * k * k * ch)) { outRows in
            for outRow in outRows {
                let n = outRow / oh, i = outRow % oh
                let image = xp + n * h * w * ch
                let top = i * s - pad, r0 = max(top, 0), r1 = min(top + k, h)
                for j in 0..<ow {
                    let left = j * s - pad, c0 = max(left, 0), c1 = min(left + k, w)
                    let o = (outRow * ow + j) * ch
                    // The window's first in-image position: where an all -infinity window routes.
                    let first = (r0 - top) * k + c0 - left
                    // Eight channels at a time with the running maxima and positions in registers.
                    var c = 0
                    while c + 8 <= ch {
                        // Positions as floats: the compare and select then stay in one vector type.
                        var best = SIMD8<Float>(repeating: -.infinity)
                        var at = SIMD8<Float>(repeating: Float(first))
                        for r in r0..<r1 {
                            for col in c0..<c1 {
                                let v = poolLoad8(image + (r * w + col) * ch + c), take = Self.maxPoolPick8(best, v)
                                best.replace(with: v, where: take)
                                at.replace(with: Float((r - top) * k + col - left), where: take)
                            }
                        }
                        poolStore8(best, yp + o + c)
                        if let positions { storePositions8(at, positions + o + c) }
                        c += 8
                    }
                    for c in c..<ch {
                        var best = -Float.infinity, at = first
                        for r in r0..<r1 {
                            for col in c0..<c1 {
                                let v = image[(r * w + col) * ch + c], take = Self.maxPoolPick(best, v)
                                best = take ? v : best
                                at = take ? (r - top) * k + col - left : at
                            }
                        }
                        yp[o + c] = best
                        positions?[o + c] = UInt8(truncatingIfNeeded: at)
                    }
                }
            }
        }
    }

    /// Each dy goes to the position its training forward saved in `workspace` (x and y are not
    /// read); overlapping windows add. Threads split images (windows overlap only inside one).
    public func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?,
                                gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.pool(g, input: x, output: y, "maxPoolBackward")
        ShapeChecks.pool(g, input: dx, output: dy, "maxPoolBackward")
        ShapeChecks.maxPoolWorkspace(workspace, count: maxPoolWorkspaceCount(g), "maxPoolBackward")
        let positions = UnsafeMutableRawPointer(workspace!.hostPointer).assumingMemoryBound(to: UInt8.self)
        if g.stride == g.window && g.padding == 0 {
            maxPoolBackwardTiled(g, positions: positions, gradOutput: dy, gradInput: dx)
            return
        }
        let (h, w, oh, ow, ch) = (g.height, g.width, g.outHeight, g.outWidth, g.channels)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(g.batch, grain: Self.grain(itemCost: oh * ow * ch * 2)) { images in
            for n in images {
                let din = dxp + n * h * w * ch
                din.update(repeating: 0, count: h * w * ch)
                for i in 0..<oh {
                    for j in 0..<ow {
                        let o = ((n * oh + i) * ow + j) * ch
                        // The window's top-left corner as if padded, as an element offset in the
                        // image (negative inside the padding); a saved position is never padding.
                        let corner = ((i * s - pad) * w + j * s - pad) * ch
                        for c in 0..<ch {
                            let p = Int(positions[o + c])
                            din[corner + ((p / k) * w + p % k) * ch + c] += dyp[o + c]
                        }
                    }
                }
            }
        }
    }

    /// The usual 2x2/2 case: windows tile the image (stride = window, no padding), so every input
    /// is in at most one window and dx is written once, without the zeroing pass and the scattered
    /// adds of the general case: each window position gets dy where the forward saved it, else 0.
    /// The rows and columns past the last window get 0. Threads split output rows.
    private func maxPoolBackwardTiled(_ g: PoolGeometry, positions: UnsafeMutablePointer<UInt8>,
                                      gradOutput dy: Tensor, gradInput dx: Tensor) {
        let (h, w, oh, ow, ch, k) = (g.height, g.width, g.outHeight, g.outWidth, g.channels, g.window)
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(g.batch * oh, grain: Self.grain(itemCost: 2 * k * w * ch)) { outRows in
            for outRow in outRows {
                let n = outRow / oh, i = outRow % oh
                let din = dxp + n * h * w * ch
                for j in 0..<ow {
                    let o = (outRow * ow + j) * ch
                    let corner = (i * k * w + j * k) * ch
                    var c = 0
                    while c + 8 <= ch {
                        let at = loadPositions8(positions + o + c)
                        let grad = poolLoad8(dyp + o + c)
                        for r in 0..<k {
                            for col in 0..<k {
                                var out = SIMD8<Float>()
                                out.replace(with: grad, where: at .== Float(r * k + col))
                                poolStore8(out, din + corner + (r * w + col) * ch + c)
                            }
                        }
                        c += 8
                    }
                    for c in c..<ch {
                        let at = Int(positions[o + c])
                        for p in 0..<(k * k) { din[corner + ((p / k) * w + p % k) * ch + c] = p == at ? dyp[o + c] : 0 }
                    }
                }
                // Inputs in no window: the columns right of the last window in these rows, and
                // (with the image's last window row) the rows below it.
                if ow * k < w {
                    for r in (i * k)..<(i * k + k) {
                        (din + (r * w + ow * k) * ch).update(repeating: 0, count: (w - ow * k) * ch)
                    }
                }
                if i == oh - 1 && oh * k < h {
                    (din + oh * k * w * ch).update(repeating: 0, count: (h - oh * k) * w * ch)
                }
            }
        }
    }

    /// Mean over the window with zero padding counted (PyTorch count_include_pad): divisor window².
    public func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        ShapeChecks.pool(g, input: x, output: y, "avgPoolForward")
        let (h, w, oh, ow, ch) = (g.height, g.width, g.outHeight, g.outWidth, g.channels)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let inv = 1 / Float(k * k)
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(g.batch * oh, grain: Self.grain(itemCost: ow * k * k * ch)) { outRows in
            for outRow in outRows {
                let n = outRow / oh, i = outRow % oh
                let image = xp + n * h * w * ch
                let r0 = max(i * s - pad, 0), r1 = min(i * s - pad + k, h)
                for j in 0..<ow {
                    let c0 = max(j * s - pad, 0), c1 = min(j * s - pad + k, w)
                    let o = yp + (outRow * ow + j) * ch
                    for c in 0..<ch { o[c] = 0 }
                    for r in r0..<r1 {
                        for col in c0..<c1 {
                            let v = image + (r * w + col) * ch
                            for c in 0..<ch { o[c] += v[c] }
                        }
                    }
                    for c in 0..<ch { o[c] *= inv }
                }
            }
        }
    }

    public func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.pool(g, input: dx, output: dy, "avgPoolBackward")
        let (h, w, oh, ow, ch) = (g.height, g.width, g.outHeight, g.outWidth, g.channels)
        let (k, s, pad) = (g.window, g.stride, g.padding)
        let inv = 1 / Float(k * k)
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(g.batch, grain: Self.grain(itemCost: oh * ow * k * k * ch)) { images in
            for n in images {
                let din = dxp + n * h * w * ch, dout = dyp + n * oh * ow * ch
                din.update(repeating: 0, count: h * w * ch)
                for i in 0..<oh {
                    let r0 = max(i * s - pad, 0), r1 = min(i * s - pad + k, h)
                    for j in 0..<ow {
                        let c0 = max(j * s - pad, 0), c1 = min(j * s - pad + k, w)
                        let d = dout + (i * ow + j) * ch
                        for r in r0..<r1 {
                            for col in c0..<c1 {
                                let o = din + (r * w + col) * ch
                                for c in 0..<ch { o[c] += d[c] * inv }
                            }
                        }
                    }
                }
            }
        }
    }

    /// x (N, C, H, W), channels-last -> y (N, C) (or (N, C, 1, 1)): per image, the mean of its
    /// H*W rows of C values.
    public func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        ShapeChecks.globalAvgPool(input: x, output: y, "globalAvgPoolForward")
        let n = x.shape[0], ch = x.shape[1], hw = x.shape[2] * x.shape[3]
        let inv = 1 / Float(hw)
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(n, grain: Self.grain(itemCost: hw * ch)) { images in
            for i in images {
                let xin = xp + i * hw * ch, o = yp + i * ch
                for c in 0..<ch { o[c] = 0 }
                for p in 0..<hw {
                    let row = xin + p * ch
                    for c in 0..<ch { o[c] += row[c] }
                }
                for c in 0..<ch { o[c] *= inv }
            }
        }
    }

    /// dy (N, C) -> dx (N, C, H, W) = dy / (H*W) broadcast to every pixel.
    public func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        ShapeChecks.globalAvgPool(input: dx, output: dy, "globalAvgPoolBackward")
        let n = dx.shape[0], ch = dx.shape[1], hw = dx.shape[2] * dx.shape[3]
        let inv = 1 / Float(hw)
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(n * hw, grain: Self.grain(itemCost: ch)) { pixels in
            for q in pixels {
                let d = dyp + (q / hw) * ch, o = dxp + q * ch
                for c in 0..<ch { o[c] = d[c] * inv }
            }
        }
    }
}

@inline(__always)
private func poolLoad8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func poolStore8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// Eight window positions (bytes) as floats, lane by lane: Swift's generic SIMD conversions
/// between byte and 32-bit lanes compiled to far slower code here (a 2x2/2 backward at 12.8 ms
/// per call instead of about 1).
@inline(__always)
private func loadPositions8(_ p: UnsafePointer<UInt8>) -> SIMD8<Float> {
    SIMD8(Float(p[0]), Float(p[1]), Float(p[2]), Float(p[3]), Float(p[4]), Float(p[5]), Float(p[6]), Float(p[7]))
}

/// `loadPositions8`'s inverse (the positions are small whole numbers): 2^23 + a whole number
/// below 256 holds it in its low byte, and four 64-bit lanes (two positions each) pack into one
/// 8-byte store, without a conversion or an extraction per lane.
@inline(__always)
private func storePositions8(_ at: SIMD8<Float>, _ p: UnsafeMutablePointer<UInt8>) {
    let bits = unsafeBitCast(at + 8_388_608, to: SIMD4<UInt64>.self) & 0x0000_00FF_0000_00FF
    let pairs = (bits | (bits &>> 24)) & 0xFFFF
    let packed = pairs[0] | pairs[1] &<< 16 | pairs[2] &<< 32 | pairs[3] &<< 48
    UnsafeMutableRawPointer(p).storeBytes(of: packed.littleEndian, as: UInt64.self)
}
