// `shortcutPad` over channels-last (N, C, H, W) tensors (stored NHWC, CPULayout.swift).
extension CPUBackend {
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
