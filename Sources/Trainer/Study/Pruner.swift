/// The pruners a study may use (`--pruner`): ASHA, Hyperband, or none.
public enum StudyPrunerKind: String, Codable, Sendable, CaseIterable {
    case asha, hyperband, none

    /// The pruner of a study whose trials train `budget` epochs (nil: none). Rungs at 1, 3, 9, ... epochs.
    public func make(budget: Int) -> TrialPruner? {
        switch self {
        case .asha: return SuccessiveHalvingPruner(minResource: 1, reductionFactor: 3)
        case .hyperband: return HyperbandPruner(minResource: 1, maxResource: max(1, budget), reductionFactor: 3)
        case .none: return nil
        }
    }
}
