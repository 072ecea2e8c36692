import GPUTensor

/// Which channels of which convolutions a pruned proxy keeps.
///
/// Channels scoring below the `percentile`-th percentile of all prunable channels of the network
/// are removed, but every layer keeps at least ceil(`minRatio` x its channels) (its best-scoring
/// ones) and at least one. Prunable: every convolution of the cnn and VGG families; in ResNets the
/// inner convolution (`conv1`) of each basic block, and, with `TiedChannels.prune`, the channels
/// each stage's identity shortcuts tie together (the stem's in stage 1, every block's
/// `conv2`, an option B projection): such a group is pruned as one layer, a channel's score the
/// mean of its scores in the group's convolutions (Synflow gives every layer about the same total
/// score, so the mean keeps a tied channel on the scale of an untied layer's).
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

    /// `tied`: groups of layer names whose output channels are pruned together (same width, same
    /// kept indices); every other layer is a group of its own. `adjust` may raise the groups'
    /// widths (in the order of `tied`) to meet the model's constraints; the best-scoring of the
    /// dropped channels are then kept too.
    public init(scores: [Synflow.LayerScores], tied: [[String]] = [], percentile: Double, minRatio: Double,
                adjust: ([Int]) -> [Int] = { $0 }) throws {
        guard percentile >= 0 && percentile <= 100 else { throw PruningError("--percentile must be in [0, 100], got \(percentile)") }
        guard minRatio > 0 && minRatio <= 1 else { throw PruningError("--min-ratio must be in (0, 1], got \(minRatio)") }
        guard !scores.isEmpty else { throw PruningError("the model has no prunable convolution") }
        self.percentile = percentile
        self.minRatio = minRatio
        // Groups: the tied ones first (in the order `adjust` sees them), then every other layer.
        let byName = Dictionary(scores.map { ($0.layer, $0.scores) }, uniquingKeysWith: { a, _ in a })
        var groups: [[String]] = []
        for names in tied {
            guard let n = byName[names.first ?? ""]?.count, names.allSatisfy({ byName[$0]?.count == n }) else {
                throw PruningError("tied layers \(names) are not convolutions of one width")
            }
            groups.append(names)
        }
        let inTied = Set(tied.joined())
        groups += scores.map(\.layer).filter { !inTied.contains($0) }.map { [$0] }
        let groupScores: [[Double]] = groups.map { names in
            let members = names.map { byName[$0]! }
            return members[0].indices.map { c in members.map { $0[c] }.reduce(0, +) / Double(members.count) }
        }
        let threshold = Self.percentile(groupScores.flatMap { $0 }, percentile)
        self.threshold = threshold
        var widths = groupScores.map { scores in
            let floor = max(1, Int((minRatio * Double(scores.count) - 1e-9).rounded(.up)))
            return min(scores.count, max(floor, scores.filter { $0 >= threshold }.count))
        }
        let adjusted = adjust(Array(widths.prefix(tied.count)))
        for (i, w) in adjusted.enumerated() {
            guard w >= widths[i] && w <= groupScores[i].count else { throw PruningError("adjusted width \(w) of \(groups[i]) out of range") }
            widths[i] = w
        }
        var keptOf: [String: [Int]] = [:]
        for (g, scores) in groupScores.enumerated() {
            let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            for name in groups[g] { keptOf[name] = Array(order.prefix(widths[g])).sorted() }
        }
        layers = scores.map { layer in
            let kept = keptOf[layer.layer]!
            return Layer(name: layer.layer, channelsBefore: layer.scores.count, channelsAfter: kept.count, kept: kept)
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

/// What a ResNet proxy does with the channels that identity shortcuts tie across a stage.
public enum TiedChannels: String, Codable, CaseIterable, Sendable {
    /// Every block keeps its output width; only each block's inner convolution narrows.
    case keep
    /// Each stage's tied channels are scored and pruned together, as one layer: the stage gets
    /// narrower too (with option A shortcuts, no narrower than the stage before it).
    case prune
}

/// Structured pruning at initialisation: scores, plan, and the narrower model's spec.
public enum Pruning {
    /// Names of the convolutions a plan may narrow, in forward order (see `ChannelPlan`).
    public static func prunableConvolutions(of model: Model, family: ModelSpec.Family, tied: TiedChannels = .keep) -> [String] {
        switch (family, tied) {
        case (.cnn, _), (.vgg, _), (.resnet, .prune): return Synflow.convolutions(of: model).map(\.name)
        case (.resnet, .keep): return model.blocks.compactMap { ($0 as? BasicBlock)?.conv1.name }
        }
    }

    /// A ResNet's groups of tied convolutions, stage by stage: those whose outputs the identity
    /// shortcuts add together (the stem with stage 1's blocks; a projection with its stage's).
    static func tiedGroups(of model: Model) -> [[String]] {
        var groups: [Int: [String]] = [:]
        for conv in Synflow.convolutions(of: model) {
            if conv.name == "conv1" { groups[1, default: []].append(conv.name); continue }   // the stem
            let parts = conv.name.split(separator: ".")
            guard parts.count >= 3, parts[0].hasPrefix("layer"), let stage = Int(parts[0].dropFirst(5)),
                  parts[2] == "conv2" || parts[2] == "downsample" else { continue }
            groups[stage, default: []].append(conv.name)
        }
        return groups.keys.sorted().map { groups[$0]! }
    }

    /// Option A pads each stage's channels evenly into the next: the widths must not fall and
    /// must differ by even numbers. Raises them until they do: each to an even number (the full
    /// widths are even, so none passes its full width), then to the width of the stage before.
    static func optionAWidths(_ widths: [Int]) -> [Int] {
        var w = widths.map { $0 + $0 % 2 }
        for s in w.indices.dropFirst() { w[s] = max(w[s], w[s - 1]) }
        return w
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
            let width = Dictionary(plan.layers.map { ($0.name, $0.channelsAfter) }, uniquingKeysWith: { a, _ in a })
            pruned.resnet!.blockWidths = plan.layers.filter { $0.name.hasSuffix(".conv1") }.map(\.channelsAfter)
            // Tied widths pruned: each stage's is its first tied convolution's.
            if let stem = width["conv1"] {
                let firsts = ["layer2.0.conv2", "layer3.0.conv2"].compactMap { width[$0] }
                guard firsts.count == 2 else { throw PruningError("plan prunes the stem but not every stage") }
                pruned.resnet!.stageWidths = [stem] + firsts
            }
        }
        _ = try Model(spec: pruned)   // the pruned spec must build
        return pruned
    }

    /// Scores a scratch copy of `spec`'s model (initialised from `seed`), plans, and reports.
    public static func prune(_ spec: ModelSpec, seed: UInt64, percentile: Double, minRatio: Double,
                             tied: TiedChannels = .keep, backend: Backend) throws -> PruneReport {
        let scratch = try Model(spec: spec)
        let prunable = Set(prunableConvolutions(of: scratch, family: spec.family, tied: tied))
        let scores = try Synflow.channelScores(of: scratch, seed: seed, backend: backend).filter { prunable.contains($0.layer) }
        let plan: ChannelPlan
        if spec.family == .resnet && tied == .prune, let o = spec.resnet {
            plan = try ChannelPlan(scores: scores, tied: tiedGroups(of: scratch), percentile: percentile, minRatio: minRatio,
                                   adjust: { o.shortcut == .a ? optionAWidths($0) : $0 })
        } else {
            plan = try ChannelPlan(scores: scores, percentile: percentile, minRatio: minRatio)
        }
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
        out += "FLOPs/image \(formatCount(flopsBefore)) -> \(formatCount(flopsAfter)) (\(num(100 * flopsAfter / max(flopsBefore, 1), 1))%) forward\n"
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
