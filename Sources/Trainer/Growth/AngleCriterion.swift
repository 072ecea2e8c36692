#if canImport(Glibc)
import Glibc
#endif

/// When to insert the next sub-network: the angle criterion of incremental training.
///
/// Feed it one validation accuracy per epoch. Every `window` epochs of the current stage it fits
/// a least-squares line `y = a + b*x` to the last `window` accuracies (x = epoch, 1 unit per epoch;
/// y = accuracy * `accuracyScale`) and takes the line's angle with the x-axis,
/// `alpha_i = atan(b)` in degrees. Windows do not overlap, and only full windows inside the
/// current stage count: epochs before `startStage()` never enter the new stage's windows.
///
/// Units matter, because the angle depends on the scale of y: with the default
/// `accuracyScale = 100` the accuracy is read in percent points, so a rise of 1 %/epoch is 45 deg
/// and 0.1 %/epoch is about 5.7 deg. Pass accuracies as fractions in [0, 1] with the default
/// scale, or already in percent with `accuracyScale: 1`.
///
/// Rules, in the order they are applied at a window's end:
/// - The first window of a stage only sets `alpha_1`; it never decides.
/// - Later windows grow when `alpha_i <= gamma * max(alpha_(i-1), 0)`. For a rising previous
///   window this is the paper's rule. The clamp is our choice for a previous window whose
///   accuracy fell or stood still (`alpha_(i-1) <= 0`): the paper's rule taken literally would then
///   keep training while accuracy falls slowly after falling fast (-2 deg is not <= 0.5 * -10 deg)
///   and grow while it falls faster; with the clamp we grow as soon as two windows in a row show
///   no progress, and keep training if the curve rises again.
/// - A flat curve (alpha = 0 twice) therefore grows: 0 <= gamma * 0. A linear rise never grows
///   with `gamma < 1`; with `gamma == 1` it grows once the angle stops increasing.
/// - If `maxEpochsPerStage` is set, any epoch at or past it grows (every epoch, until
///   `startStage()`), so that a caller can't miss it.
///
/// The criterion never resets itself: after inserting a stage, call `startStage()`. When there
/// is nothing left to insert, ignore `.grow`.
///
/// ```swift
/// var criterion = AngleCriterion(window: 5, gamma: 0.5)
/// for epoch in ... {
///     if case .grow(let reason) = criterion.record(validationAccuracy) {
///         insertNextStage(); log(reason); criterion.startStage()
///     }
/// }
/// ```
public struct AngleCriterion: Equatable, Sendable {
    public enum Decision: Equatable, Sendable {
        case continueTraining
        case grow(reason: String)

        public var isGrow: Bool { if case .grow = self { return true } else { return false } }
    }

    /// Epochs per window (>= 2).
    public let window: Int
    /// 0 < gamma <= 1.
    public let gamma: Double
    /// Multiplies each accuracy before fitting; 100 reads fractions as percent points.
    public let accuracyScale: Double
    /// Grow after this many epochs in a stage whatever the angles say (nil: no limit).
    public let maxEpochsPerStage: Int?

    /// Stages started so far, counting the first (1 after init).
    public private(set) var stage: Int = 1
    /// Epochs recorded since the current stage started.
    public private(set) var epochsInStage: Int = 0
    /// The angles (degrees) of the current stage's full windows, oldest first.
    public private(set) var angles: [Double] = []
    // The current, possibly partial, window's accuracies (already scaled); at most `window`.
    private var pending: [Double] = []

    /// Traps on a configuration that `validationError` rejects; check user input with it first.
    public init(window: Int, gamma: Double, accuracyScale: Double = 100, maxEpochsPerStage: Int? = nil) {
        if let problem = Self.validationError(window: window, gamma: gamma, accuracyScale: accuracyScale,
                                              maxEpochsPerStage: maxEpochsPerStage) {
            preconditionFailure("AngleCriterion: \(problem)")
        }
        self.window = window
        self.gamma = gamma
        self.accuracyScale = accuracyScale
        self.maxEpochsPerStage = maxEpochsPerStage
        pending.reserveCapacity(window)
    }

    /// Why a configuration is invalid, in words a user can act on; nil when it is valid.
    public static func validationError(window: Int, gamma: Double, accuracyScale: Double = 100,
                                       maxEpochsPerStage: Int? = nil) -> String? {
        if window < 2 { return "the window must be at least 2 epochs (a line needs two points), got \(window)" }
        if !(gamma > 0 && gamma <= 1) { return "gamma must be in (0, 1], got \(gamma)" }
        if !(accuracyScale > 0 && accuracyScale.isFinite) { return "the accuracy scale must be positive, got \(accuracyScale)" }
        if let m = maxEpochsPerStage, m < 1 { return "the maximum epochs per stage must be at least 1, got \(m)" }
        return nil
    }

    /// The angle of the last full window of this stage, if any.
    public var lastAngle: Double? { angles.last }

    /// Records one epoch's validation accuracy (finite; a fraction with the default scale).
    public mutating func record(_ accuracy: Double) -> Decision {
        precondition(accuracy.isFinite, "AngleCriterion: accuracy must be finite, got \(accuracy)")
        epochsInStage += 1
        pending.append(accuracy * accuracyScale)

        var decision = Decision.continueTraining
        if pending.count == window {
            let alpha = Self.angleDegrees(pending)
            pending.removeAll(keepingCapacity: true)
            if let previous = angles.last, alpha <= gamma * max(previous, 0) {
                decision = .grow(reason: "alpha_\(angles.count + 1) = \(Self.short(alpha)) deg <= gamma \(gamma)"
                    + " * max(alpha_\(angles.count) = \(Self.short(previous)) deg, 0)"
                    + " (stage \(stage), epoch \(epochsInStage) of the stage, window \(window))")
            }
            angles.append(alpha)
        }
        if !decision.isGrow, let limit = maxEpochsPerStage, epochsInStage >= limit {
            decision = .grow(reason: "stage \(stage) reached the maximum of \(limit) epochs"
                + (angles.last.map { " (last alpha = \(Self.short($0)) deg)" } ?? ""))
        }
        return decision
    }

    /// Call after inserting a stage: windows and angles start over.
    public mutating func startStage() {
        stage += 1
        epochsInStage = 0
        angles.removeAll()
        pending.removeAll(keepingCapacity: true)
    }

    /// atan of the least-squares slope of `y` against x = 0, 1, 2, ..., in degrees.
    /// The slope is sum((x - mx)(y - my)) / sum((x - mx)^2); the x offset does not change it.
    static func angleDegrees(_ y: [Double]) -> Double {
        let n = Double(y.count)
        let mx = (n - 1) / 2
        var my = 0.0
        for v in y { my += v }
        my /= n
        var sxy = 0.0, sxx = 0.0
        for (i, v) in y.enumerated() {
            let dx = Double(i) - mx
            sxy += dx * (v - my)
            sxx += dx * dx
        }
        return atan(sxy / sxx) * 180 / Double.pi
    }

    // Three decimals are plenty for a log line; Swift prints the shortest round-trip form.
    private static func short(_ x: Double) -> String { "\((x * 1000).rounded() / 1000)" }
}

// A resumed run restores the criterion mid-window; decoding re-checks the configuration so that a
// hand-edited or corrupt checkpoint fails with a message instead of trapping later.
extension AngleCriterion: Codable {
    private enum CodingKeys: String, CodingKey {
        case window, gamma, accuracyScale, maxEpochsPerStage, stage, epochsInStage, angles, pending
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let window = try c.decode(Int.self, forKey: .window)
        let gamma = try c.decode(Double.self, forKey: .gamma)
        let scale = try c.decode(Double.self, forKey: .accuracyScale)
        let maxEpochs = try c.decodeIfPresent(Int.self, forKey: .maxEpochsPerStage)
        if let problem = Self.validationError(window: window, gamma: gamma, accuracyScale: scale,
                                              maxEpochsPerStage: maxEpochs) {
            throw DecodingError.dataCorruptedError(forKey: .window, in: c, debugDescription: problem)
        }
        self.init(window: window, gamma: gamma, accuracyScale: scale, maxEpochsPerStage: maxEpochs)
        stage = try c.decode(Int.self, forKey: .stage)
        epochsInStage = try c.decode(Int.self, forKey: .epochsInStage)
        angles = try c.decode([Double].self, forKey: .angles)
        pending = try c.decode([Double].self, forKey: .pending)
        guard stage >= 1, epochsInStage >= 0, pending.count < window,
              epochsInStage == angles.count * window + pending.count else {
            throw DecodingError.dataCorruptedError(forKey: .pending, in: c, debugDescription:
                "inconsistent state: \(epochsInStage) epochs in stage \(stage), \(angles.count) windows of \(window) and \(pending.count) pending")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(window, forKey: .window)
        try c.encode(gamma, forKey: .gamma)
        try c.encode(accuracyScale, forKey: .accuracyScale)
        try c.encodeIfPresent(maxEpochsPerStage, forKey: .maxEpochsPerStage)
        try c.encode(stage, forKey: .stage)
        try c.encode(epochsInStage, forKey: .epochsInStage)
        try c.encode(angles, forKey: .angles)
        try c.encode(pending, forKey: .pending)
    }
}
