import GPUTensor
#if canImport(Glibc)
import Glibc
#endif
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

    /// Whether the study engine forms groups: `STRATA_TRIAL_GROUPS=on|off|auto` (auto when unset).
    public enum Mode: String, Sendable { case on, off, auto }

    /// The mode the environment asks for; an unknown value is refused by name.
    public static func mode(environment value: String? = getenv("STRATA_TRIAL_GROUPS").map { String(cString: $0) }) throws -> Mode {
        guard let value, !value.isEmpty else { return .auto }
        guard let m = Mode(rawValue: value) else {
            throw GroupError("STRATA_TRIAL_GROUPS=\(value) is not on, off or auto")
        }
        return m
    }

    /// Whether trials on `device` train in groups. Auto: on CUDA (a few-MFLOP network leaves
    /// almost all of a GPU idle, see issue 22), not on the CPU, where a fused group measured
    /// 0.73-1.06x of training its members one after another (bench/groups-cpu.md): there the
    /// members' convolutions already fill the cores. `auto` as a device counts as CUDA in a
    /// build with the CUDA trait.
    public static func groups(device: String, mode: Mode) -> Bool {
        switch mode {
        case .on: return true
        case .off: return false
        case .auto:
            switch DeviceChoice(parsing: device) {
            case .cuda?: return true
            case .auto?: return BackendFactory.hasCUDA
            default: return false
            }
        }
    }

    /// Most members the engine puts in one group (`STRATA_GROUP_MAX`, default 8): the worker
    /// splits a group further when it exceeds the memory budget (`memberBytes`).
    public static var maxMembers: Int {
        getenv("STRATA_GROUP_MAX").flatMap { Int(String(cString: $0)) }.map { max(1, min($0, 64)) } ?? 8
    }

    /// Memory a group may take on its device (`STRATA_GROUP_MEMORY` in MiB, default 4096): the
    /// budget `memberBytes` is held against.
    public static var memoryBudget: Int {
        (getenv("STRATA_GROUP_MEMORY").flatMap { Int(String(cString: $0)) }.map { max(1, $0) } ?? 4096) << 20
    }

    /// Device bytes one member adds to a group, computed from its network's shapes: parameters
    /// with their gradients and up to two optimizer state tensors (4 copies), and each layer's
    /// output and its gradient at batch `batch` (what forward keeps for backward), per leaf layer.
    public static func memberBytes(_ model: Model, batch: Int) -> Int {
        func leaves(_ l: any Layer) -> [any Layer] { (l as? Sequential).map { $0.layers.flatMap(leaves) } ?? [l] }
        var shape = model.inputShape
        var activations = 0
        for layer in model.layers.flatMap(leaves) {
            shape = layer.outputShape(input: shape)
            activations += shape.reduce(1, *)
        }
        return 4 * (4 * model.parameterCount + 2 * batch * activations)
    }

    /// Members per group within `budget` bytes (at least 1).
    public static func cap(memberBytes: Int, budget: Int = memoryBudget) -> Int {
        max(1, min(maxMembers, budget / max(1, memberBytes)))
    }
}
