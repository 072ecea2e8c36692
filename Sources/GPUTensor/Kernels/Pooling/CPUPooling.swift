// Pooling over channels-last (N, C, H, W) tensors (stored NHWC, CPULayout.swift): the channel is
// the inner loop. Window (oh, ow) covers rows oh*stride - pad ..< +window, clipped to the image.
//
// Max pooling runs on oneDNN (DNNLPooling.swift) with its workspace of window positions; here is
// `maxPoolExact`, the contract's rule for inputs with NaN or -infinity, which oneDNN's max pooling
// does not treat as the contract says.
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

    /// Max pooling by the contract's rule: padding is -infinity; NaN wins (as in PyTorch); ties
    /// keep the first (row-major) maximum. With a workspace, each output's window position goes
    /// to its byte there, in oneDNN's encoding. For inputs with NaN or -infinity (`maxPoolForward`).
    /// Channels-last: each output pixel's window is scanned in row-major order with the channels
    /// as the inner, vectorised loop; threads split output rows.
    func maxPoolExact(_ g: PoolGeometry, input x: Tensor, output y: Tensor, workspace: Tensor?) {
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

/// Eight window positions (small whole numbers held as floats) as bytes: 2^23 + a whole number
/// below 256 holds it in its low byte, and four 64-bit lanes (two positions each) pack into one
/// 8-byte store, without a conversion or an extraction per lane.
@inline(__always)
private func storePositions8(_ at: SIMD8<Float>, _ p: UnsafeMutablePointer<UInt8>) {
    let bits = unsafeBitCast(at + 8_388_608, to: SIMD4<UInt64>.self) & 0x0000_00FF_0000_00FF
    let pairs = (bits | (bits &>> 24)) & 0xFFFF
    let packed = pairs[0] | pairs[1] &<< 16 | pairs[2] &<< 32 | pairs[3] &<< 48
    UnsafeMutableRawPointer(p).storeBytes(of: packed.littleEndian, as: UInt64.self)
}
