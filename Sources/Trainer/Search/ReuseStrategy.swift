/// How a trial may reuse the conv layers another trial of the same search trained.
public enum ReuseStrategy: String, Codable, CaseIterable, Sendable {
    /// Every trial trains from scratch.
    case none
    /// The published rule: a trial with n conv layers reuses, copied and frozen, the first n-1
    /// conv layers of the finished trial identical to it except that it has n-1 conv layers.
    case paper
    /// Any finished trial whose first k conv layers have the same shapes (same filters, kernel,
    /// input pipeline) can donate them; the largest k wins, then the lowest validation loss.
    case bestPrefix = "best-prefix"
}

/// A trial of the plan with what it waits for.
public struct PlannedTrial: Equatable, Sendable {
    public var config: TrialConfig
    public var id: String
    /// Conv layers copied from the donor (0: trains from scratch).
    public var reuseLayers: Int
    /// `paper`: the donor, fixed by the rule. `best-prefix`: nil, chosen from `candidates` when
    /// they have all finished (so the choice does not depend on timing or on the worker count).
    public var fixedDonor: String?
    /// Trials that must be finished (or failed) before this one starts.
    public var dependencies: [String]
}

/// Turns proposed trials into a plan: duplicates dropped (same id), donors and dependencies set.
public enum SearchPlan {
    public static func make(_ configs: [TrialConfig], reuse: ReuseStrategy) -> [PlannedTrial] {
        var seen = Set<String>()
        let unique = configs.filter { seen.insert($0.id).inserted }
        switch reuse {
        case .none:
            return unique.map { PlannedTrial(config: $0, id: $0.id, reuseLayers: 0, fixedDonor: nil, dependencies: []) }
        case .paper:
            return unique.map { c in
                let donor = c.withConvLayers(c.convLayers - 1)
                guard c.convLayers > 1, seen.contains(donor.id) else {
                    return PlannedTrial(config: c, id: c.id, reuseLayers: 0, fixedDonor: nil, dependencies: [])
                }
                return PlannedTrial(config: c, id: c.id, reuseLayers: c.convLayers - 1, fixedDonor: donor.id,
                                    dependencies: [donor.id])
            }
        case .bestPrefix:
            // Candidates: the trials with the most conv layers below n that share the prefix shape.
            var byPrefix: [PrefixShape: [Int: [String]]] = [:]
            for c in unique { byPrefix[PrefixShape(c), default: [:]][c.convLayers, default: []].append(c.id) }
            return unique.map { c in
                let depths = byPrefix[PrefixShape(c)] ?? [:]
                for k in stride(from: c.convLayers - 1, through: 1, by: -1) {
                    if let ids = depths[k], !ids.isEmpty {
                        return PlannedTrial(config: c, id: c.id, reuseLayers: k, fixedDonor: nil, dependencies: ids)
                    }
                }
                return PlannedTrial(config: c, id: c.id, reuseLayers: 0, fixedDonor: nil, dependencies: [])
            }
        }
    }

    /// The donor of `trial` once its dependencies are terminal: the fixed one if it finished;
    /// under best-prefix the finished candidate with the lowest validation loss (then the lowest
    /// id). Nil: no donor could be used (all failed), the trial trains from scratch.
    public static func chooseDonor(for trial: PlannedTrial, records: [String: StudyEvent]) -> String? {
        guard trial.reuseLayers > 0 else { return nil }
        if let d = trial.fixedDonor { return records[d]?.status == .finished ? d : nil }
        let ok = trial.dependencies.compactMap { records[$0] }.filter {
            $0.status == .finished && ($0.validationLoss ?? .nan).isFinite
        }
        return ok.min { ($0.validationLoss!, $0.id) < ($1.validationLoss!, $1.id) }?.id
    }
}

/// What makes the first conv layers of two trials interchangeable: the same family, filters and
/// kernel (the input pipeline is the search's own, shared by all its trials).
struct PrefixShape: Hashable {
    var model: String
    var filters: Int
    var kernel: Int
    init(_ c: TrialConfig) {
        model = c.model
        filters = c.filters
        kernel = c.kernel
    }
}
