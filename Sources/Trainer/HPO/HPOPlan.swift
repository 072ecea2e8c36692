/// What `strata hpo --dry-run` prints: the budget, the sampler and pruner with their rungs, the
/// space, and the trials the sampler proposes before it has seen a result (all of them for the
/// random sampler, TPE's start-up trials), which are exactly the ones the search will run.
/// Nothing is trained or written.
public enum HPOPlan {
    public static func lines(_ config: HPOConfig, directory: String) throws -> [String] {
        let space = try config.space()
        let trial = config.trial
        var out: [String] = []
        out.append("hpo plan for \(directory) (dry run: nothing trained, nothing written)")
        out.append("  trials     \(config.trials) of \(trial.modelName), \(plural(trial.epochs, "epoch")) each, batch \(trial.batchSize), "
                   + "\(trial.optimizer.kind.rawValue), seed \(trial.seed)")
        if let proxy = config.proxy { out.append("  proxy      \(proxy)") }
        out.append("  objective  validation \(config.objective.rawValue) (\(config.objective == .accuracy ? "maximised" : "minimised"))")
        switch config.sampler {
        case .tpe:
            let startup = TPESampler(seed: trial.seed).startupTrials
            out.append(config.trials <= startup
                ? "  sampler    tpe: every trial is a random start-up trial (TPE models the results from trial \(startup) on)"
                : "  sampler    tpe: \(plural(startup, "random start-up trial")), then TPE on the results")
        default:
            out.append("  sampler    \(config.sampler.rawValue)")
        }
        out.append("  pruner     " + prunerText(config))
        for (name, dimension) in zip(space.names, space.dimensions) {
            out.append("  space      \(name): \(describe(dimension))")
        }
        if config.finalEpochs > 0 {
            out.append("  final      \(config.final.modelName) for \(plural(config.finalEpochs, "epoch")) with the winner's hyperparameters")
        } else {
            out.append("  final      none (--final-epochs 0)")
        }
        let known = knownTrials(config)
        if known > 0 {
            out.append("first \(plural(known, "trial")) (proposed before any result, so exactly these run; numbered as in trials/ and journal.jsonl):")
            let sampler = config.makeSampler()
            for i in 0..<known {
                let params = sampler.suggest(space, history: [], trialNumber: i)
                out.append("  trial \(i)  " + params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: " "))
            }
        }
        return out
    }

    /// Trials proposed without history: every trial of a random search, TPE's start-up ones.
    static func knownTrials(_ config: HPOConfig) -> Int {
        switch config.sampler {
        case .random: return config.trials
        case .tpe: return min(config.trials, TPESampler(seed: config.trial.seed).startupTrials)
        default: return 0
        }
    }

    static func prunerText(_ config: HPOConfig) -> String {
        let epochs = config.trial.epochs
        switch config.pruner {
        case .none: return "none: every trial trains \(plural(epochs, "epoch"))"
        case .asha:
            let asha = SuccessiveHalvingPruner(minResource: 1, reductionFactor: 3)
            var rungs: [Int] = []
            var k = 0
            while asha.rungStep(k) < epochs { rungs.append(asha.rungStep(k)); k += 1 }
            return rungs.isEmpty ? "asha: no rung below \(plural(epochs, "epoch")), so no trial is stopped early"
                : "asha: trials may stop after epoch \(rungs.map(String.init).joined(separator: ", ")) (reduction factor 3)"
        case .hyperband:
            let hb = HyperbandPruner(minResource: 1, maxResource: max(1, epochs), reductionFactor: 3)
            return "hyperband: \(plural(hb.brackets.count, "bracket")) of successive halving up to \(plural(epochs, "epoch"))"
        }
    }

    static func describe(_ d: HPODimension) -> String {
        switch d {
        case .float(let lo, let hi, let log): return "\(log ? "log-uniform" : "uniform") [\(HPOValue.float(lo)), \(HPOValue.float(hi))]"
        case .int(let lo, let hi, let log): return "\(log ? "log-uniform integer" : "integer") [\(lo), \(hi)]"
        case .categorical(let choices): return "one of " + choices.joined(separator: ", ")
        }
    }
}
