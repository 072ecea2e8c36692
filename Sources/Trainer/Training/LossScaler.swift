import GPUTensor

/// Dynamic loss scaling (fp16 training): the loss gradient is multiplied by `scale` before the
/// backward pass, so that small gradients survive fp16's narrow exponent range, and the
/// gradients are divided by it again before the optimizer step.
///
/// A step whose gradients hold an infinity or a NaN (the scale was too large: something
/// overflowed) is skipped, weights and optimizer state untouched, and the scale halved; after
/// `growthInterval` good steps in a row it doubles. The defaults are PyTorch's
/// `torch.amp.GradScaler`: initial scale 2^16, backoff 0.5, growth 2 every 2000 steps.
/// Scales are powers of two, so scaling and unscaling are exact in FP32 (barring overflow and
/// subnormals): a scaled step that is not skipped updates the weights to the same bits.
///
/// A value: the run keeps it (`TrainingRun.lossScaler`) and its checkpoints save it, so a resumed
/// run continues with the scale it had.
public struct LossScaler: Equatable, Sendable {
    public static let defaultInitialScale: Float = 65536   // 2^16
    public static let defaultGrowthInterval = 2000

    /// The factor the loss gradient is multiplied by.
    public private(set) var scale: Float
    /// Good steps in a row since the scale last changed.
    public private(set) var goodSteps: Int
    public let growthInterval: Int

    public init(scale: Float = LossScaler.defaultInitialScale, growthInterval: Int = LossScaler.defaultGrowthInterval,
                goodSteps: Int = 0) {
        precondition(scale > 0 && scale.isFinite && growthInterval > 0, "loss scale \(scale), growth interval \(growthInterval)")
        self.scale = scale
        self.growthInterval = growthInterval
        self.goodSteps = goodSteps
    }

    /// Records a step: finite gradients count towards growth (the scale doubles after
    /// `growthInterval` of them, unless that would overflow FP32); non-finite ones halve the
    /// scale (never below the smallest normal FP32, where halving would stop being exact) and
    /// restart the count.
    public mutating func update(finite: Bool) {
        if finite {
            goodSteps += 1
            if goodSteps >= growthInterval {
                goodSteps = 0
                if (scale * 2).isFinite { scale *= 2 }
            }
        } else {
            goodSteps = 0
            scale = max(scale / 2, Float.leastNormalMagnitude)
        }
    }

    /// Whether every gradient is finite, with one host sync: each gradient's sum goes into a
    /// slot of `sums` on the device (an inf or NaN anywhere makes its sum non-finite; so does a
    /// sum that overflows, which with scaled gradients means a backoff is due anyway) and the
    /// slots are read back at once. `sums` has at least `gradients.count` elements.
    public static func allFinite(_ gradients: [Tensor], sums: Tensor, backend: Backend) throws -> Bool {
        guard !gradients.isEmpty else { return true }
        for (slot, g) in gradients.enumerated() { backend.sum(g, into: sums, slot: slot) }
        let host = try backend.download(sums.slice(0..<gradients.count))
        return host.allSatisfy(\.isFinite)
    }

    /// Divides every gradient by `scale` in place (exact: a power of two).
    public func unscale(_ gradients: [Tensor], backend: Backend) {
        let inverse = 1 / scale
        for g in gradients { backend.scale(g, by: inverse, output: g) }
    }
}
