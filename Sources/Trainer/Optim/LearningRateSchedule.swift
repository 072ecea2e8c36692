#if canImport(Glibc)
import Glibc
#endif

/// The learning rate as a function of training progress, evaluated every step.
/// A linear warm-up (from 0) may precede any schedule.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Kind: Codable, Equatable, Sendable {
        case constant
        /// Multiply by `gamma` at each listed epoch (PyTorch's MultiStepLR).
        case steps(milestones: [Int], gamma: Float)
        /// Cosine from the base rate to `minimum` over `epochs` (PyTorch's CosineAnnealingLR).
        case cosine(epochs: Int, minimum: Float)
    }

    public var kind: Kind
    public var warmupEpochs: Double

    public init(_ kind: Kind = .constant, warmupEpochs: Double = 0) {
        self.kind = kind
        self.warmupEpochs = warmupEpochs
    }

    /// The rate at fractional epoch `progress` (epoch index + fraction of the epoch done).
    public func rate(base: Float, progress: Double) -> Float {
        var lr: Float
        switch kind {
        case .constant:
            lr = base
        case .steps(let milestones, let gamma):
            let passed = milestones.filter { Double($0) <= progress }.count
            lr = base * powf(gamma, Float(passed))
        case .cosine(let epochs, let minimum):
            let t = min(1, max(0, progress / Double(max(1, epochs))))
            lr = minimum + (base - minimum) * Float(0.5 * (1 + cos(Double.pi * t)))
        }
        if warmupEpochs > 0 && progress < warmupEpochs {
            lr *= Float(progress / warmupEpochs)
        }
        return lr
    }

    /// Parses `constant`, `steps:30,60[@0.1]`, `cosine[:MIN]` (cosine spans `totalEpochs`).
    public static func parse(_ text: String, totalEpochs: Int, warmupEpochs: Double = 0) -> LearningRateSchedule? {
        if text == "constant" { return LearningRateSchedule(.constant, warmupEpochs: warmupEpochs) }
        if text.hasPrefix("cosine") {
            let rest = text.dropFirst("cosine".count)
            var minimum: Float = 0
            if rest.hasPrefix(":") { guard let m = Float(rest.dropFirst()) else { return nil }; minimum = m }
            else if !rest.isEmpty { return nil }
            return LearningRateSchedule(.cosine(epochs: totalEpochs, minimum: minimum), warmupEpochs: warmupEpochs)
        }
        if text.hasPrefix("steps:") {
            let body = text.dropFirst("steps:".count)
            let parts = body.split(separator: "@", maxSplits: 1)
            let milestones = parts[0].split(separator: ",").compactMap { Int($0) }
            guard !milestones.isEmpty, milestones.count == parts[0].split(separator: ",").count else { return nil }
            var gamma: Float = 0.1
            if parts.count == 2 { guard let g = Float(parts[1]) else { return nil }; gamma = g }
            return LearningRateSchedule(.steps(milestones: milestones, gamma: gamma), warmupEpochs: warmupEpochs)
        }
        return nil
    }
}
