// Augmentation and the option-A shortcut over (N, C, H, W) planes; threads split planes.
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
    /// x and y must not overlap.
    public func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        precondition(x.rank == 4 && x.shape == y.shape, "randomCropFlip \(x) -> \(y)")
        precondition(padding >= 0, "randomCropFlip: padding \(padding)")
        precondition(x.storage !== y.storage || x.offset + x.count <= y.offset || y.offset + y.count <= x.offset,
                     "randomCropFlip: input and output overlap")
        let (_, ch, h, w) = x.nchw
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(x.shape[0] * ch, grain: Self.grain(itemCost: h * w)) { planes in
            for plane in planes {
                let (oy, ox, flip) = Self.cropFlipParameters(image: plane / ch, padding: padding, allowFlip: allowFlip,
                                                             seed: seed, counter: counter)
                let src = xp + plane * h * w, dst = yp + plane * h * w
                // Output columns j whose source column lies inside the image.
                let j0: Int, j1: Int
                if flip {   // source column W-1-j+ox in [0, W) <=> j in [ox, W+ox)
                    j0 = max(0, ox); j1 = min(w, w + ox)
                } else {    // source column j+ox in [0, W) <=> j in [-ox, W-ox)
                    j0 = max(0, -ox); j1 = min(w, w - ox)
                }
                for i in 0..<h {
                    let row = dst + i * w, si = i + oy
                    guard si >= 0 && si < h && j0 < j1 else {
                        row.update(repeating: 0, count: w)
                        continue
                    }
                    let srow = src + si * w
                    for j in 0..<j0 { row[j] = 0 }
                    if flip {
                        for j in j0..<j1 { row[j] = srow[w - 1 - j + ox] }
                    } else {
                        for j in j0..<j1 { row[j] = srow[j + ox] }
                    }
                    for j in j1..<w { row[j] = 0 }
                }
            }
        }
    }

    /// `y[n, c, ...] = (x[n, c, ...] - mean[c]) / std[c]`; y may alias x.
    public func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        precondition(x.rank == 4 || x.rank == 2, "normalizeChannels: x \(x.shape) must be (N, C, H, W) or (N, C)")
        let (n, ch, h, w) = x.nchw
        precondition(y.count == x.count && mean.count == ch && std.count == ch,
                     "normalizeChannels \(x) -> \(y) with \(mean.count) means, \(std.count) stds")
        let hw = h * w
        let xp = x.hostPointer, yp = y.hostPointer
        mean.withUnsafeBufferPointer { meanp in
            std.withUnsafeBufferPointer { stdp in
                parallelFor(n * ch, grain: Self.grain(itemCost: hw)) { planes in
                    for plane in planes {
                        let m = meanp[plane % ch], s = stdp[plane % ch]
                        let src = xp + plane * hw, dst = yp + plane * hw
                        for k in 0..<hw { dst[k] = (src[k] - m) / s }
                    }
                }
            }
        }
    }

    /// Output spatial size of the option-A shortcut: ceil(size / stride).
    @inline(__always)
    private static func shortcutSize(_ size: Int, _ stride: Int) -> Int { (size + stride - 1) / stride }

    @inline(__always)
    private static func checkShortcut(_ x: Tensor, _ y: Tensor, _ stride: Int, _ channelOffset: Int, _ what: StaticString) {
        precondition(stride >= 1 && x.rank == 4 && y.rank == 4 && x.shape[0] == y.shape[0]
                     && channelOffset >= 0 && channelOffset + x.shape[1] <= y.shape[1]
                     && y.shape[2] == shortcutSize(x.shape[2], stride) && y.shape[3] == shortcutSize(x.shape[3], stride),
                     "\(what): x \(x.shape) -> y \(y.shape) with stride \(stride), channel offset \(channelOffset)")
    }

    /// `y[n, c + offset, i, j] = x[n, c, i*stride, j*stride]`, all other y zero.
    public func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        Self.checkShortcut(x, y, stride, channelOffset, "shortcutPadForward")
        let (_, cin, h, w) = x.nchw
        let (n, cout, oh, ow) = y.nchw
        let xp = x.hostPointer, yp = y.hostPointer
        parallelFor(n * cout, grain: Self.grain(itemCost: oh * ow)) { planes in
            for plane in planes {
                let dst = yp + plane * oh * ow
                let c = plane % cout - channelOffset
                guard c >= 0 && c < cin else {
                    dst.update(repeating: 0, count: oh * ow)
                    continue
                }
                let src = xp + ((plane / cout) * cin + c) * h * w
                for i in 0..<oh {
                    let srow = src + i * stride * w, row = dst + i * ow
                    for j in 0..<ow { row[j] = srow[j * stride] }
                }
            }
        }
    }

    /// The adjoint: `dx[n, c, i*stride, j*stride] = dy[n, c + offset, i, j]`, all other dx zero.
    public func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        Self.checkShortcut(dx, dy, stride, channelOffset, "shortcutPadBackward")
        let (_, cin, h, w) = dx.nchw
        let (n, cout, oh, ow) = dy.nchw
        let dyp = dy.hostPointer, dxp = dx.hostPointer
        parallelFor(n * cin, grain: Self.grain(itemCost: h * w)) { planes in
            for plane in planes {
                let dst = dxp + plane * h * w
                let src = dyp + ((plane / cin) * cout + plane % cin + channelOffset) * oh * ow
                if stride != 1 { dst.update(repeating: 0, count: h * w) }
                for i in 0..<oh {
                    let row = dst + i * stride * w, srow = src + i * ow
                    for j in 0..<ow { row[j * stride] = srow[j] }
                }
            }
        }
    }
}
