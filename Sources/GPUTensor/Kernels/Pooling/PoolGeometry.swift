/// The shape of a pooling kernel: a plain value, hashable like `ConvGeometry`.
///
/// Max or average pooling with a square window over NCHW input; padding is implicit
/// (-infinity for max, zeros counted in the divisor for average, as PyTorch's count_include_pad).
public struct PoolGeometry: Hashable, Sendable {
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var window: Int
    public var stride: Int
    public var padding: Int

    public init(batch: Int, channels: Int, height: Int, width: Int, window: Int, stride: Int, padding: Int = 0) {
        precondition(window > 0 && stride > 0 && padding >= 0 && padding * 2 <= window)
        self.batch = batch; self.channels = channels; self.height = height; self.width = width
        self.window = window; self.stride = stride; self.padding = padding
        precondition(outHeight > 0 && outWidth > 0, "pooling has an empty output")
    }

    public var outHeight: Int { (height + 2 * padding - window) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - window) / stride + 1 }
    public var inputShape: [Int] { [batch, channels, height, width] }
    public var outputShape: [Int] { [batch, channels, outHeight, outWidth] }
}
