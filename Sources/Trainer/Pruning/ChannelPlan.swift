import GPUTensor

/// Which channels of which convolutions a pruned proxy keeps.
///
/// Channels scoring below the `percentile`-th percentile of all prunable channels of the network
/// are removed, but every layer keeps at least ceil(`minRatio` x its channels) (its best-scoring
/// ones) and at least one. Prunable: every convolution of the cnn and VGG families; in ResNets the
/// inner convolution (`conv1`) of each basic block, since the block's output channels are tied to
/// the identity shortcuts of the whole stage and are kept.
public struct ChannelPlan: Codable, Equatable, Sendable {
    public struct Layer: Codable, Equatable, Sendable {
        public var name: String
        public var channelsBefore: Int
        public var channelsAfter: Int
        /// Indices of the kept channels, ascending.
        public var kept: [Int]

        enum CodingKeys: String, CodingKey {
            case name, channelsBefore = "channels_before", channelsAfter = "channels_after", kept
        }
    }

    public var percentile: Double
    public var minRatio: Double
    /// The score below which a channel is removed (before the per-layer minimum).
    public var threshold: Double
    public var layers: [Layer]

    enum CodingKeys: String, CodingKey { case percentile, minRatio = "min_ratio", threshold, layers }

    public init(scores: [Synflow.LayerScores], percentile: Double, minRatio: Double) throws {
        guard percentile >= 0 && percentile <= 100 else { throw PruningError("--percentile must be in [0, 100], got \(percentile)") }
        guard minRatio > 0 && minRatio <= 1 else { throw PruningError("--min-ratio must be in (0, 1], got \(minRatio)") }
        guard !scores.isEmpty else { throw PruningError("the model has no prunable convolution") }
        self.percentile = percentile
        self.minRatio = minRatio
        let threshold = Self.percentile(scores.flatMap(\.scores), percentile)
        self.threshold = threshold
        layers = scores.map { layer in
            let n = layer.scores.count
            let floor = max(1, Int((minRatio * Double(n) - 1e-9).rounded(.up)))
            let order = layer.scores.indices.sorted { layer.scores[$0] > layer.scores[$1] || (layer.scores[$0] == layer.scores[$1] && $0 < $1) }
            let above = order.filter { layer.scores[$0] >= threshold }.count
            let keep = min(n, max(floor, above))
            return Layer(name: layer.layer, channelsBefore: n, channelsAfter: keep, kept: Array(order.prefix(keep)).sorted())
        }
    }

    /// The p-th percentile with linear interpolation between order statistics (NumPy's default).
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard sorted.count > 1 else { return sorted.first ?? 0 }
        let position = p / 100 * Double(sorted.count - 1)
        let lo = Int(position.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - Double(lo))
    }
}

/// Structured pruning at initialisation: scores, plan, and the narrower model's spec.
public enum Pruning {
    /// Names of the convolutions a plan may narrow, in forward order (see `ChannelPlan`).
    public static func prunableConvolutions(of model: Model, family: ModelSpec.Family) -> [String] {
        switch family {
        case .cnn, .vgg: return Synflow.convolutions(of: model).map(\.name)
        case .resnet: return model.blocks.compactMap { ($0 as? BasicBlock)?.conv1.name }
        }
    }

    /// The spec of the proxy: the same family and depth with the plan's widths. The proxy is
    /// built and initialised afresh from this spec (it is a narrower model, not a mask).
    public static func prunedSpec(_ spec: ModelSpec, plan: ChannelPlan) throws -> ModelSpec {
        var pruned = spec
        let widths = plan.layers.map(\.channelsAfter)
        switch spec.family {
        case .cnn:
            guard widths.count == spec.cnn!.filters.count else { throw PruningError("plan has \(widths.count) layers, the cnn \(spec.cnn!.filters.count)") }
            pruned.cnn!.filters = widths
        case .vgg:
            var rest = widths[...]
            pruned.vgg!.groups = try spec.vgg!.groups.map { group in
                guard rest.count >= group.count else { throw PruningError("plan has too few layers for the vgg groups") }
                defer { rest = rest.dropFirst(group.count) }
                return Array(rest.prefix(group.count))
            }
        case .resnet:
            pruned.resnet!.blockWidths = widths
        }
        _ = try Model(spec: pruned)   // the pruned spec must build
        return pruned
    }

    /// Scores a scratch copy of `spec`'s model (initialised from `seed`), plans, and reports.
    public static func prune(_ spec: ModelSpec, seed: UInt64, percentile: Double, minRatio: Double,
                             backend: Backend) throws -> PruneReport {
        let scratch = try Model(spec: spec)
        let prunable = Set(prunableConvolutions(of: scratch, family: spec.family))
        let scores = try Synflow.channelScores(of: scratch, seed: seed, backend: backend).filter { prunable.contains($0.layer) }
        let plan = try ChannelPlan(scores: scores, percentile: percentile, minRatio: minRatio)
        let pruned = try prunedSpec(spec, plan: plan)
        let before = try Model(spec: spec), after = try Model(spec: pruned)
        return PruneReport(plan: plan, spec: pruned, paramsBefore: before.parameterCount, paramsAfter: after.parameterCount,
                           flopsBefore: before.cost.forward, flopsAfter: after.cost.forward)
    }
}

/// What `strata prune` prints (`--json`) and what its `--output` spec came from.
public struct PruneReport: Codable, Equatable, Sendable {
    public var plan: ChannelPlan
    /// The proxy's model spec (also written alone by `--output`).
    public var spec: ModelSpec
    public var paramsBefore: Int
    public var paramsAfter: Int
    /// Forward FLOPs per image.
    public var flopsBefore: Double
    public var flopsAfter: Double

    enum CodingKeys: String, CodingKey {
        case layers, percentile, minRatio = "min_ratio", threshold, spec
        case paramsBefore = "params_before", paramsAfter = "params_after", flopsBefore = "flops_before", flopsAfter = "flops_after"
    }

    init(plan: ChannelPlan, spec: ModelSpec, paramsBefore: Int, paramsAfter: Int, flopsBefore: Double, flopsAfter: Double) {
        self.plan = plan
        self.spec = spec
        self.paramsBefore = paramsBefore
        self.paramsAfter = paramsAfter
        self.flopsBefore = flopsBefore
        self.flopsAfter = flopsAfter
    }

    // Flat JSON: `layers`, `params_before`, ... at the top level, as `strata prune --json` documents.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        plan = ChannelPlan(percentile: try c.decode(Double.self, forKey: .percentile), minRatio: try c.decode(Double.self, forKey: .minRatio),
                           threshold: try c.decode(Double.self, forKey: .threshold),
                           layers: try c.decode([ChannelPlan.Layer].self, forKey: .layers))
        spec = try c.decode(ModelSpec.self, forKey: .spec)
        paramsBefore = try c.decode(Int.self, forKey: .paramsBefore)
        paramsAfter = try c.decode(Int.self, forKey: .paramsAfter)
        flopsBefore = try c.decode(Double.self, forKey: .flopsBefore)
        flopsAfter = try c.decode(Double.self, forKey: .flopsAfter)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(plan.layers, forKey: .layers)
        try c.encode(plan.percentile, forKey: .percentile)
        try c.encode(plan.minRatio, forKey: .minRatio)
        try c.encode(plan.threshold, forKey: .threshold)
        try c.encode(spec, forKey: .spec)
        try c.encode(paramsBefore, forKey: .paramsBefore)
        try c.encode(paramsAfter, forKey: .paramsAfter)
        try c.encode(flopsBefore, forKey: .flopsBefore)
        try c.encode(flopsAfter, forKey: .flopsAfter)
    }

    /// The table `strata prune` prints.
    public var text: String {
        var rows = [["layer", "channels", "kept", "kept %"]]
        for l in plan.layers {
            rows.append([l.name, "\(l.channelsBefore)", "\(l.channelsAfter)",
                         num(100 * Double(l.channelsAfter) / Double(l.channelsBefore), 1)])
        }
        var out = TextTable.align(rows)
        out += "parameters  \(paramsBefore) -> \(paramsAfter) (\(num(100 * Double(paramsAfter) / Double(max(paramsBefore, 1)), 1))%)\n"
        out += "FLOPs/image \(sci(flopsBefore)) -> \(sci(flopsAfter)) (\(num(100 * flopsAfter / max(flopsBefore, 1), 1))%) forward\n"
        out += "synflow at initialisation; channels below the \(num(plan.percentile, 1))th percentile removed, "
            + "at least \(num(plan.minRatio * 100, 1))% of each layer kept\n"
        return out
    }
}

extension ChannelPlan {
    init(percentile: Double, minRatio: Double, threshold: Double, layers: [Layer]) {
        self.percentile = percentile
        self.minRatio = minRatio
        self.threshold = threshold
        self.layers = layers
    }
}
