// Augmentation and the option-A shortcut over channels-last (N, C, H, W) tensors (stored NHWC,
// CPULayout.swift).
extension CPUBackend {
    /// Crop offsets and flip of image n, exactly as documented on `Backend.randomCropFlip`.
    /// `floor(u * (2p+1))` is exact in Double (u has 24 bits), equal to the integer
    /// `((bits >> 8) * (2p+1)) >> 24` a GPU kernel may use.
    @inline(__always)
    static func cropFlipParameters(image n: Int, padding: Int, allowFlip: Bool,
                                   seed: UInt64, counter: UInt64) -> (oy: Int, ox: Int, flip: Bool) {
        let span = Double(2 * padding + 1)
        let u0 = Philox.uniform(seed: seed, counter: counter, index: 3 * n)
        let u1 = Philox.uniform(seed: seed, counter: counter, index: 3 * n + 1)
        let u2 = Philox.uniform(seed: seed, counter: counter, index: 3 * n + 2)
        let oy = Int(Double(u0) * span) - padding, ox = Int(Double(u1) * span) - padding
        return (oy, ox, allowFlip && u2 < 0.5)
    }

    /// `y[n, c, i, j] = x[n, c, i + oy, j' + ox]` (0 outside), `j' = flip ? W-1-j : j`.
    /// x and y must not overlap. Channels-last: a pixel's C values move together; threads split
    /// output rows.
    public func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        ShapeChecks.randomCropFlip(x, output: y, padding: padding)
        let (_, ch, h, w) = x.nchw
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(x.shape[0] * h, grain: Self.grain(itemCost: w * ch)) { rows in
            for outRow in rows {
                let n = outRow / h, i = outRow % h
                let (oy, ox, flip) = Self.cropFlipParameters(image: n, padding: padding, allowFlip: allowFlip,
                                                             seed: seed, counter: counter)
                let row = yp + outRow * w * ch, si = i + oy
                // Output columns j whose source column lies inside the image.
                let j0: Int, j1: Int
                if flip {   // source column W-1-j+ox in [0, W) <=> j in [ox, W+ox)
                    j0 = max(0, ox); j1 = min(w, w + ox)
                } else {    // source column j+ox in [0, W) <=> j in [-ox, W-ox)
                    j0 = max(0, -ox); j1 = min(w, w - ox)
                }
                guard si >= 0 && si < h && j0 < j1 else {
                    row.update(repeating: 0, count: w * ch)
                    continue
                }
                let srow = xp + (n * h + si) * w * ch
                row.update(repeating: 0, count: j0 * ch)
                if flip {
                    for j in j0..<j1 { (row + j * ch).update(from: srow + (w - 1 - j + ox) * ch, count: ch) }
                } else {
                    (row + j0 * ch).update(from: srow + (j0 + ox) * ch, count: (j1 - j0) * ch)
                }
                (row + j1 * ch).update(repeating: 0, count: (w - j1) * ch)
            }
        }
    }

    /// `y[n, c, ...] = (x[n, c, ...] - mean[c]) / std[c]`; y may alias x. (N, C) and
    /// channels-last (N, C, H, W) are rows of C values.
    public func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        ShapeChecks.normalizeChannels(x, output: y, mean: mean, std: std)
        let (_, ch, _, _) = x.nchw
        let rows = x.count / max(1, ch)
        let xp = x.hostPointer, yp = y.hostPointer
        mean.withUnsafeBufferPointer { meanp in
            std.withUnsafeBufferPointer { stdp in
                parallelFor(rows, grain: Self.grain(itemCost: ch)) { range in
                    for r in range {
                        let src = xp + r * ch, dst = yp + r * ch
                        for c in 0..<ch { dst[c] = (src[c] - meanp[c]) / stdp[c] }
                    }
                }
            }
        }
    }

    /// `y[n, c + offset, i, j] = x[n, c, i*stride, j*stride]`, all other y zero. Channels-last:
    /// each output pixel is zeros, the source pixel's Cin values, zeros.
    public func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        ShapeChecks.shortcutPad(x, y, stride: stride, channelOffset: channelOffset, "shortcutPadForward")
        let (_, cin, h, w) = x.nchw
        let (n, cout, oh, ow) = y.nchw
        let xp = x.hostPointer, yp = y.hostPointer
        let tail = cout - channelOffset - cin
        parallelFor(n * oh, grain: Self.grain(itemCost: ow * cout)) { rows in
            for outRow in rows {
                let image = outRow / oh, i = outRow % oh
                let srow = xp + ((image * h + i * stride) * w) * cin
                for j in 0..<ow {
                    let dst = yp + (outRow * ow + j) * cout
                    dst.update(repeating: 0, count: channelOffset)
                    (dst + channelOffset).update(from: srow + j * stride * cin, count: cin)
                    (dst + channelOffset + cin).update(repeating: 0, count: tail)
                }
            }
        }
    }

    /// The adjoint: `dx[n, c, i*stride, j*stride] = dy[n, c + offset, i, j]`, all other dx zero.
    public func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        ShapeChecks.shortcutPad(dx, dy, stride: stride, channelOffset: channelOffset, "shortcutPadBackward")
        let (_, cin, h, w) = dx.nchw
        let (n, cout, oh, ow) = dy.nchw
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        // Threads split images; rows of dx that no output row reaches (stride > 1) are zeroed.
        parallelFor(n, grain: Self.grain(itemCost: h * w * cin)) { images in
            for image in images {
                let din = dxp + image * h * w * cin
                if stride != 1 { din.update(repeating: 0, count: h * w * cin) }
                for i in 0..<oh {
                    let row = din + i * stride * w * cin, srow = dyp + ((image * oh + i) * ow) * cout + channelOffset
                    for j in 0..<ow { (row + j * stride * cin).update(from: srow + j * cout, count: cin) }
                }
            }
        }
    }
}
