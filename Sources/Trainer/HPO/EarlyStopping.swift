/// Whether a running trial goes on after reporting its validation score at a step (epoch).
public enum PruneDecision: String, Codable, Sendable {
    case `continue`
    case prune
}

/// Early stopping of trials while they train: asked at every reported step.
public protocol TrialPruner: Sendable {
    /// `value` is the trial's score at `step` (1-based epochs), to be minimised (pass -accuracy
    /// to maximise accuracy). Records the value and decides.
    mutating func report(trial: Int, step: Int, value: Double) -> PruneDecision
    /// The first step after `step` at which `report` may stop `trial`: where the search engine
    /// ends a trial's segment (its job trains up to there, and the decision is taken on the
    /// segment's last epoch), so that early stopping needs no signal to a running worker.
    func decisionStep(trial: Int, after step: Int) -> Int
}

/// Asynchronous successive halving (ASHA; Li et al. 2020), as Optuna's SuccessiveHalvingPruner:
/// rung k sits at step minResource * eta^(minEarlyStoppingRate + k); a trial reaching a rung is
/// recorded there and goes on only if its value is within the best 1/eta of all values recorded
/// at that rung so far (the first arrivals always go on: nothing to compare with). Trials never
/// wait for each other, which is what keeps every worker busy.
public struct SuccessiveHalvingPruner: TrialPruner {
    public var minResource: Int
    public var reductionFactor: Int
    public var minEarlyStoppingRate: Int
    /// Values recorded at each rung, by rung index.
    public private(set) var rungs: [[Double]] = []

    public init(minResource: Int = 1, reductionFactor: Int = 3, minEarlyStoppingRate: Int = 0) {
        precondition(minResource >= 1 && reductionFactor >= 2 && minEarlyStoppingRate >= 0)
        self.minResource = minResource
        self.reductionFactor = reductionFactor
        self.minEarlyStoppingRate = minEarlyStoppingRate
    }

    /// The step of rung k.
    public func rungStep(_ k: Int) -> Int {
        var s = minResource
        for _ in 0..<(minEarlyStoppingRate + k) { s *= reductionFactor }
        return s
    }

    /// The rung whose step is `step`, if any.
    func rung(at step: Int) -> Int? {
        var k = 0
        while rungStep(k) < step { k += 1 }
        return rungStep(k) == step ? k : nil
    }

    public func decisionStep(trial: Int, after step: Int) -> Int {
        var k = 0
        while rungStep(k) <= step { k += 1 }
        return rungStep(k)
    }

    public mutating func report(trial: Int, step: Int, value: Double) -> PruneDecision {
        guard let k = rung(at: step) else { return .continue }
        guard value.isFinite else { return .prune }
        while rungs.count <= k { rungs.append([]) }
        rungs[k].append(value)
        let competing = rungs[k].sorted()
        let index = max(competing.count / reductionFactor - 1, 0)
        return value <= competing[index] ? .continue : .prune
    }
}

/// Hyperband (Li et al. 2018) over ASHA brackets, as Optuna's HyperbandPruner: brackets
/// s = 0..<B with B = floor(log_eta(maxResource / minResource)) + 1, bracket s a successive
/// halving with early-stopping rate s; each trial goes to one bracket, chosen from its number in
/// proportion to the brackets' budgets (a bracket with fewer rungs gets fewer trials).
public struct HyperbandPruner: TrialPruner {
    public private(set) var brackets: [SuccessiveHalvingPruner]
    let budgets: [Int]

    public init(minResource: Int = 1, maxResource: Int, reductionFactor: Int = 3) {
        precondition(maxResource >= minResource && minResource >= 1 && reductionFactor >= 2)
        var count = 1, r = minResource
        while r * reductionFactor <= maxResource { r *= reductionFactor; count += 1 }
        brackets = (0..<count).map {
            SuccessiveHalvingPruner(minResource: minResource, reductionFactor: reductionFactor, minEarlyStoppingRate: $0)
        }
        // Optuna's budget of bracket s: ceil(n_brackets * eta^(n_brackets - 1 - s) / (n_brackets - s)).
        budgets = (0..<count).map { s in
            var p = 1
            for _ in 0..<(count - 1 - s) { p *= reductionFactor }
            return Int((Double(count * p) / Double(count - s)).rounded(.up))
        }
    }

    /// The bracket of a trial: its number hashed into the total budget.
    public func bracket(of trial: Int) -> Int {
        let total = budgets.reduce(0, +)
        var n = Int(fnv1a64("trial-\(trial)") % UInt64(total))
        for (s, b) in budgets.enumerated() {
            if n < b { return s }
            n -= b
        }
        return budgets.count - 1
    }

    public func decisionStep(trial: Int, after step: Int) -> Int {
        brackets[bracket(of: trial)].decisionStep(trial: trial, after: step)
    }

    public mutating func report(trial: Int, step: Int, value: Double) -> PruneDecision {
        brackets[bracket(of: trial)].report(trial: trial, step: step, value: value)
    }
}
