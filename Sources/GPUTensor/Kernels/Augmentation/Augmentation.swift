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
