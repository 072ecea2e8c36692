/// Data augmentation (x, y: (N, C, H, W)).
/// One family of the `Backend` contract (see Backend.swift for the conventions every family shares).
public protocol AugmentationKernels: AnyObject {
    // MARK: Data augmentation (x, y: (N, C, H, W))

    /// Random crop of the image zero-padded by `padding` pixels, then optional horizontal flip
    /// (x and y must not overlap).
    /// For image n, with `u_k = Philox.uniform(seed, counter, 3n + k)`:
    /// `oy = floor(u_0 * (2p+1)) - p`, `ox = floor(u_1 * (2p+1)) - p`, `flip = allowFlip && u_2 < 0.5`;
    /// `y[n, c, i, j] = x[n, c, i + oy, j' + ox]` (0 outside the image) with `j' = flip ? W-1-j : j`.
    func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int, allowFlip: Bool, seed: UInt64, counter: UInt64)
    /// `y[n, c, ...] = (x[n, c, ...] - mean[c]) / std[c]` for (N, C) or (N, C, H, W).
    func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float])
}

// MARK: Shape checks (ShapeChecks.swift: preconditions every backend calls first)

extension ShapeChecks {
    @inline(__always)
    public static func randomCropFlip(_ x: Tensor, output y: Tensor, padding: Int) {
        precondition(x.rank == 4 && x.shape == y.shape, "randomCropFlip \(x) -> \(y)")
        precondition(padding >= 0, "randomCropFlip: padding \(padding)")
        precondition(disjoint(x, y), "randomCropFlip: input and output overlap")
    }

    @inline(__always)
    public static func normalizeChannels(_ x: Tensor, output y: Tensor, mean: [Float], std: [Float]) {
        precondition(x.rank == 4 || x.rank == 2, "normalizeChannels: x \(x.shape) must be (N, C, H, W) or (N, C)")
        let ch = x.shape[1]
        // y[n, c, ...] is indexed like x: the same shape, not only the same count.
        precondition(y.shape == x.shape && mean.count == ch && std.count == ch,
                     "normalizeChannels \(x) -> \(y) with \(mean.count) means, \(std.count) stds")
    }
}
