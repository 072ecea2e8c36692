#if CUDA
import CCuda

// Pooling, augmentation and the option-A shortcut: launchers for the NVRTC kernels (own kernels
// rather than cuDNN pooling, so max-pool ties route to the first maximum exactly as on the CPU).
extension CUDABackend {
    private func checkPool(_ g: PoolGeometry, input x: Tensor, output y: Tensor, _ what: StaticString) {
        precondition(x.shape == g.inputShape && y.shape == g.outputShape,
                     "\(what): x \(x.shape), y \(y.shape) for pool \(g.inputShape) -> \(g.outputShape)")
    }

    /// The pooling kernels' shared geometry arguments, as slots without an array.
    private struct PoolArguments: KernelArguments {
        let g: PoolGeometry
        var argumentCount: Int { 8 }
        func store(into slots: UnsafeMutablePointer<UInt64>) {
            func put(_ i: Int, _ v: Int) { KernelArgument.int(v).store(in: UnsafeMutableRawPointer(slots + i)) }
            put(0, g.batch * g.channels); put(1, g.height); put(2, g.width); put(3, g.outHeight)
            put(4, g.outWidth); put(5, g.window); put(6, g.stride); put(7, g.padding)
        }
    }

    private func poolArguments(_ g: PoolGeometry) -> PoolArguments { PoolArguments(g: g) }

    public func maxPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        checkPool(g, input: x, output: y, "maxPoolForward")
        launch(.maxpool_forward, count: y.count, .tensor(x), .tensor(y), poolArguments(g))
    }

    public func maxPoolBackward(_ g: PoolGeometry, input x: Tensor, output y: Tensor, gradOutput dy: Tensor, gradInput dx: Tensor) {
        checkPool(g, input: x, output: y, "maxPoolBackward")
        checkPool(g, input: dx, output: dy, "maxPoolBackward")
        launch(.maxpool_backward, count: dx.count, .tensor(x), .tensor(dy), .tensor(dx), poolArguments(g))
    }

    public func avgPoolForward(_ g: PoolGeometry, input x: Tensor, output y: Tensor) {
        checkPool(g, input: x, output: y, "avgPoolForward")
        launch(.avgpool_forward, count: y.count,
               .tensor(x), .tensor(y), poolArguments(g), .float(1 / Float(g.window * g.window)))
    }

    public func avgPoolBackward(_ g: PoolGeometry, gradOutput dy: Tensor, gradInput dx: Tensor) {
        checkPool(g, input: dx, output: dy, "avgPoolBackward")
        launch(.avgpool_backward, count: dx.count,
               .tensor(dy), .tensor(dx), poolArguments(g), .float(1 / Float(g.window * g.window)))
    }

    public func globalAvgPoolForward(input x: Tensor, output y: Tensor) {
        precondition(x.rank == 4, "globalAvgPoolForward: x \(x.shape) must be (N, C, H, W)")
        let (n, c, h, w) = x.nchw
        precondition(y.count == n * c, "globalAvgPoolForward: y \(y.shape) for x \(x.shape)")
        launch(.global_avgpool_forward, count: n * c, .tensor(x), .tensor(y), .int(n * c), .int(h * w))
    }

    public func globalAvgPoolBackward(gradOutput dy: Tensor, gradInput dx: Tensor) {
        precondition(dx.rank == 4, "globalAvgPoolBackward: dx \(dx.shape) must be (N, C, H, W)")
        let (n, c, h, w) = dx.nchw
        precondition(dy.count == n * c, "globalAvgPoolBackward: dy \(dy.shape) for dx \(dx.shape)")
        launch(.global_avgpool_backward, count: dx.count,
               .tensor(dy), .tensor(dx), .int(n * c), .int(h * w), .float(1 / Float(h * w)))
    }

    public func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        precondition(x.rank == 4 && x.shape == y.shape, "randomCropFlip \(x) -> \(y)")
        precondition(padding >= 0, "randomCropFlip: padding \(padding)")
        precondition(x.storage !== y.storage || x.offset + x.count <= y.offset || y.offset + y.count <= x.offset,
                     "randomCropFlip: input and output overlap")
        let (n, c, h, w) = x.nchw
        launch(.random_crop_flip, count: x.count,
               .tensor(x), .tensor(y), .int(n), .int(c), .int(h), .int(w), .int(padding), .int32(Int32(allowFlip ? 1 : 0)),
                .uint64(seed), .uint64(counter))
    }

    public func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        precondition(x.rank == 4 || x.rank == 2, "normalizeChannels: x \(x.shape) must be (N, C, H, W) or (N, C)")
        let (_, ch, h, w) = x.nchw
        precondition(y.count == x.count && mean.count == ch && std.count == ch,
                     "normalizeChannels \(x) -> \(y) with \(mean.count) means, \(std.count) stds")
        recordFailure {
            let meanStd = try scratch(mean + std)   // freed (recycled) after the queued kernel, stream order
            launch(.normalize_channels, count: x.count,
                   .tensor(x), .tensor(y), .tensor(meanStd), .int(x.count), .int(ch), .int(h * w))
        }
    }

    private static func shortcutSize(_ size: Int, _ stride: Int) -> Int { (size + stride - 1) / stride }

    private func checkShortcut(_ x: Tensor, _ y: Tensor, _ stride: Int, _ channelOffset: Int, _ what: StaticString) {
        precondition(stride >= 1 && x.rank == 4 && y.rank == 4 && x.shape[0] == y.shape[0]
                     && channelOffset >= 0 && channelOffset + x.shape[1] <= y.shape[1]
                     && y.shape[2] == Self.shortcutSize(x.shape[2], stride) && y.shape[3] == Self.shortcutSize(x.shape[3], stride),
                     "\(what): x \(x.shape) -> y \(y.shape) with stride \(stride), channel offset \(channelOffset)")
    }

    public func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        checkShortcut(x, y, stride, channelOffset, "shortcutPadForward")
        let (_, cin, h, w) = x.nchw, (n, cout, oh, ow) = y.nchw
        launch(.shortcut_forward, count: y.count,
               .tensor(x), .tensor(y), .int(n), .int(cin), .int(h), .int(w), .int(cout), .int(oh), .int(ow),
                .int(stride), .int(channelOffset))
    }

    public func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        checkShortcut(dx, dy, stride, channelOffset, "shortcutPadBackward")
        let (_, cin, h, w) = dx.nchw, (n, cout, oh, ow) = dy.nchw
        launch(.shortcut_backward, count: dx.count,
               .tensor(dy), .tensor(dx), .int(n), .int(cin), .int(h), .int(w), .int(cout), .int(oh), .int(ow),
                .int(stride), .int(channelOffset))
    }
}
#endif
