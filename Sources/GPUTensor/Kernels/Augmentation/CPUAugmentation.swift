// Augmentation over channels-last (N, C, H, W) tensors (stored NHWC,
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
}
