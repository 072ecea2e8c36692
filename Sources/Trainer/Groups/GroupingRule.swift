#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Which trials may train as one `TrialGroup`: the key the study engine groups runnable trials by.
///
/// Equal keys mean the same network (model spec: layer shapes), the same training batches
/// (batch size, data settings and seed: one seed drives a run's validation split, shuffle and
/// augmentation, see `TrainingRun`) and the same evaluation batches. What may differ is
/// everything a member keeps to itself: the optimizer (kind, lr, momentum, weight decay), the
/// schedule and the epoch budget (a member that finishes or is pruned leaves; the rest go on).
///
/// Trials with different seeds get different keys and are not grouped: grouping them would
/// change the batches they see, so a grouped trial would no longer be the trial the journal
/// records. The journal records, per member, the group it trained in (`group` id and the other
/// members' trial ids); its results are those of the trial alone within float tolerance.
public enum GroupingRule {
    /// The grouping key of a trial, or nil when it trains alone: layer reuse (a frozen prefix or
    /// copied layers) and networks `TrialGroup` cannot fuse (dropout, residual blocks, global
    /// average pooling; `TrialGroup.plan` says which) are not grouped.
    public static func key(for config: TrainConfig) -> String? {
        guard config.reuse == nil else { return nil }
        guard let model = try? Model(spec: config.model), (try? TrialGroup.plan(model)) != nil else { return nil }
        struct Key: Encodable {
            var model: ModelSpec
            var data: DataConfig
            var batchSize: Int
            var evalBatchSize: Int
            var seed: UInt64
            var device: String
        }
        let key = Key(model: config.model, data: config.data, batchSize: config.batchSize,
                      evalBatchSize: config.evalBatchSize, seed: config.seed, device: config.device)
        return try? jsonString(key)
    }

    /// Splits trials into groups of equal key, at most `maxSize` members each (a memory cap the
    /// caller measures), in the order given; trials without a key are groups of one.
    public static func groups(_ configs: [TrainConfig], maxSize: Int) -> [[Int]] {
        precondition(maxSize >= 1)
        var out: [[Int]] = []
        var open: [String: Int] = [:]   // key -> index in `out` of its group being filled
        for (i, c) in configs.enumerated() {
            guard let k = key(for: c) else { out.append([i]); continue }
            if let j = open[k], out[j].count < maxSize {
                out[j].append(i)
            } else {
                open[k] = out.count
                out.append([i])
            }
        }
        return out
    }
}
