/// Which search trials may train as one group (`StudyTrials.grouping`): trials that train from
/// scratch (a trial that may freeze a donor's prefix waits for its donor and trains alone) with
/// the same architecture, batch size, optimizer kind, seed and data. The key is the trial's
/// config with what a member keeps to itself blanked (learning rate, epochs), plus the search's
/// data and device: the same partition as `GroupingRule.key` of the trials' `TrainConfig`s
/// (seeds must be equal: one seed drives a run's split, shuffle and augmentation, so members
/// see exactly the batches each would alone).
extension SearchTrials {
    func grouping(of id: String) -> TrialGrouping? {
        guard let p = plan.first(where: { $0.id == id }), p.reuseLayers == 0, p.dependencies.isEmpty else { return nil }
        var shared = p.config
        shared.lr = 0
        shared.epochs = 0
        let settings = search.settings
        return TrialGrouping(key: shared.canonicalJSON + SearchJSON.canonical(settings.data), device: settings.device,
                             directory: search.directory.trialDirectory(id))
    }
}
