extension CPUBackend {
    public func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64) {
        fatalError("not implemented")
    }

    public func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        fatalError("not implemented")
    }

    public func shortcutPadForward(_ x: Tensor, output y: Tensor, stride: Int, channelOffset: Int) {
        fatalError("not implemented")
    }

    public func shortcutPadBackward(gradOutput dy: Tensor, gradInput dx: Tensor, stride: Int, channelOffset: Int) {
        fatalError("not implemented")
    }
}
