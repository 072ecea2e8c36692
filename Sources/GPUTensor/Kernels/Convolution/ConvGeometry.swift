/// The shape of a convolution: a plain value, hashable so a backend can cache per-shape plans
/// (cuDNN algorithms, im2col workspaces) under it (as `PoolGeometry`, Pooling/PoolGeometry.swift).

/// A 2-D convolution over NCHW input with (Cout, Cin / groups, KH, KW) weights and zero padding.
///
/// `groups` G > 1 is a grouped convolution (PyTorch's `groups`): input channels and output
/// channels are split into G equal consecutive blocks and output block g sees input block g only,
/// so output channel o uses weights `w[o]` over input channels `(o / (Cout/G)) * (Cin/G) ..< +Cin/G`.
/// Trial groups (Trainer/Groups) run G same-shaped networks' convolutions as one such call.
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public var batch: Int
    public var inChannels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernelH: Int
    public var kernelW: Int
    public var strideH: Int
    public var strideW: Int
    public var padH: Int
    public var padW: Int
    /// Channel groups (1: an ordinary convolution); divides `inChannels` and `outChannels`.
    public var groups: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernelH: Int, kernelW: Int, strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0,
                groups: Int = 1) {
        precondition(batch > 0 && inChannels > 0 && outChannels > 0 && kernelH > 0 && kernelW > 0)
        precondition(strideH > 0 && strideW > 0 && padH >= 0 && padW >= 0)
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "\(groups) groups do not divide \(inChannels) -> \(outChannels) channels")
        self.groups = groups
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW; self.padH = padH; self.padW = padW
        precondition(outHeight > 0 && outWidth > 0, "convolution \(self) has an empty output")
    }

    /// Square kernel, equal stride and padding in both directions.
    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1) {
        self.init(batch: batch, inChannels: inChannels, height: height, width: width, outChannels: outChannels,
                  kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride, padH: padding, padW: padding,
                  groups: groups)
    }

    public var outHeight: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    public var inputShape: [Int] { [batch, inChannels, height, width] }
    public var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }
    public var weightShape: [Int] { [outChannels, inChannels / groups, kernelH, kernelW] }

    /// Multiply-adds x2 of one pass (forward, backward-data and backward-filter cost the same).
    public var flops: Double {
        2.0 * Double(batch * outChannels * outHeight * outWidth) * Double(inChannels / groups * kernelH * kernelW)
    }

    /// The same convolution for another batch size.
    public func withBatch(_ n: Int) -> ConvGeometry { var g = self; g.batch = n; return g }

    public var description: String {
        "conv \(inChannels)->\(outChannels) \(kernelH)x\(kernelW)/\(strideH) pad \(padH) on \(batch)x\(height)x\(width)"
            + (groups > 1 ? " groups \(groups)" : "")
    }
}
