/// What `strata reuse-report` writes to `report.json`, and its text table.
///
/// `rows`: one per single swap (`layer`, `kind`, `accuracy`, `baseline_accuracy`, `loss`, `rmse`,
/// ...); `cumulative`: layers 1...i swapped together; `layers`: per source and layer, the RMSE of
/// each kind and, for batch norms, the means of both models' tensors (MRM, MRV, MRW, MRB);
/// `sources`: the verdicts.
public struct ReuseReport: Codable, Equatable, Sendable {
    public struct Row: Codable, Equatable, Sendable {
        public var source: String
        public var layer: String
        public var layerType: SwappableLayer.LayerType
        /// W, B, RM, RV, RW or RB.
        public var kind: String
        public var accuracy: Double
        public var baselineAccuracy: Double
        public var loss: Double
        public var baselineLoss: Double
        /// Root-mean-square difference of this tensor between target and source.
        public var rmse: Double
        /// accuracy - baselineAccuracy (negative: the swap hurt).
        public var accuracyChange: Double

        enum CodingKeys: String, CodingKey {
            case source, layer, layerType = "layer_type", kind, accuracy, baselineAccuracy = "baseline_accuracy"
            case loss, baselineLoss = "baseline_loss", rmse, accuracyChange = "accuracy_change"
        }

        public init(source: String, layer: String, layerType: SwappableLayer.LayerType, kind: String, accuracy: Double,
                    baselineAccuracy: Double, loss: Double, baselineLoss: Double, rmse: Double) {
            self.source = source
            self.layer = layer
            self.layerType = layerType
            self.kind = kind
            self.accuracy = accuracy
            self.baselineAccuracy = baselineAccuracy
            self.loss = loss
            self.baselineLoss = baselineLoss
            self.rmse = rmse
            accuracyChange = accuracy - baselineAccuracy
        }
    }

    public struct CumulativeRow: Codable, Equatable, Sendable {
        public var source: String
        /// Layers 1...layers swapped (every selected kind of each).
        public var layers: Int
        public var lastLayer: String
        public var accuracy: Double
        public var loss: Double
        public var accuracyChange: Double

        enum CodingKeys: String, CodingKey {
            case source, layers, lastLayer = "last_layer", accuracy, loss, accuracyChange = "accuracy_change"
        }
    }

    public var target: String
    public var testImages: Int
    public var baselineAccuracy: Double
    public var baselineLoss: Double
    public var tolerance: Double
    public var kinds: [String]
    public var rule = ReuseReport.verdictRule
    public var rows: [Row] = []
    public var cumulative: [CumulativeRow] = []
    public var layers: [LayerStatistics] = []
    public var sources: [SourceSummary] = []
    /// Classes of the target's task (chance accuracy is 1 / classes); nil in older reports.
    public var classes: Int?
    /// The heatmap's colour scale in accuracy points, [min, max] with min < 0 < max (`--color-scale`),
    /// so heatmaps of several reports can share one; nil: symmetric up to the largest change.
    public var colorScale: [Double]?

    enum CodingKeys: String, CodingKey {
        case target, testImages = "test_images", baselineAccuracy = "baseline_accuracy", baselineLoss = "baseline_loss"
        case tolerance, kinds, rule, rows, cumulative, layers, sources, classes, colorScale = "color_scale"
    }

    /// A warning when the target's own accuracy is within two standard errors of chance (a
    /// target that learned nothing makes every swap look harmless); nil otherwise.
    public var chanceWarning: String? {
        guard let classes, classes > 1, testImages > 0, baselineAccuracy.isFinite else { return nil }
        let chance = 1 / Double(classes)
        let margin = 2 * (chance * (1 - chance) / Double(testImages)).squareRoot()
        guard baselineAccuracy <= chance + margin else { return nil }
        return "the target \(target) is at chance accuracy (\(pct(baselineAccuracy)) on \(testImages) images, chance "
            + "\(pct(chance)) for \(classes) classes): it has learned nothing, so swaps cannot hurt it and every verdict "
            + "below is meaningless"
    }

    /// Parses `--color-scale MIN,MAX` (accuracy points, MIN < 0 < MAX; `-5,5`), or one number S
    /// for -S,S; throws one line naming the flag otherwise.
    public static func parseColorScale(_ text: String) throws -> [Double] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double(String($0.filter { $0 != " " })) }
        let bounds: [Double?] = parts.count == 1 ? [parts[0].map { -abs($0) }, parts[0].map(abs)] : parts
        guard bounds.count == 2, let lo = bounds[0], let hi = bounds[1], lo.isFinite, hi.isFinite, lo < 0, hi > 0 else {
            throw ReuseAnalysisError("--color-scale: expected MIN,MAX in accuracy points with MIN < 0 < MAX (e.g. --color-scale=-5,5), got '\(text)'")
        }
        return [lo, hi]
    }

    public init(target: String, testImages: Int, baselineAccuracy: Double, baselineLoss: Double, tolerance: Double,
                kinds: [String]) {
        self.target = target
        self.testImages = testImages
        self.baselineAccuracy = baselineAccuracy
        self.baselineLoss = baselineLoss
        self.tolerance = tolerance
        self.kinds = kinds
    }

    public static let verdictRule = "a swap is reusable when it costs at most the tolerance in test accuracy; a layer is "
        + "reusable when all its swapped kinds are (partly: some are); the source is a reusable network for the target "
        + "when at least 75% of its single swaps are reusable; the longest reusable prefix is the largest i such that "
        + "swapping layers 1..j together stays within the tolerance for every j <= i"
}

/// Per source and layer: RMSE by kind, batch-norm means of both models, verdict.
public struct LayerStatistics: Codable, Equatable, Sendable {
    public var source: String
    public var layer: String
    public var layerType: SwappableLayer.LayerType
    /// Kind (W, B, RM, ...) -> RMSE between target and source.
    public var rmse: [String: Double] = [:]
    /// Batch norms: kind -> mean of the target's tensor (MRM, MRV, MRW, MRB) and of the source's.
    public var targetMeans: [String: Double] = [:]
    public var sourceMeans: [String: Double] = [:]
    /// `reusable`, `partly reusable` or `not reusable`.
    public var verdict = ""

    enum CodingKeys: String, CodingKey {
        case source, layer, layerType = "layer_type", rmse, targetMeans = "target_means", sourceMeans = "source_means", verdict
    }

    init(source: String, layer: String, layerType: SwappableLayer.LayerType) {
        self.source = source
        self.layer = layer
        self.layerType = layerType
    }

    static func verdict(_ rows: [ReuseReport.Row], tolerance: Double) -> String {
        let ok = rows.filter { withinTolerance($0.accuracyChange, tolerance) }.count
        return ok == rows.count ? "reusable" : ok > 0 ? "partly reusable" : "not reusable"
    }
}

/// The verdict for one source model.
public struct SourceSummary: Codable, Equatable, Sendable {
    public struct Correlation: Codable, Equatable, Sendable {
        /// Over the swaps of one kind (or all), RMSE against accuracy drop.
        public var pearson: Double?
        public var spearman: Double?
        public var count: Int
    }

    public var source: String
    public var path: String
    public var swaps: Int
    public var reusableSwaps: Int
    public var reusableNetwork: Bool
    /// Largest i such that layers 1...j swapped together stay within the tolerance for all j <= i
    /// (nil without `--cumulative`).
    public var longestReusablePrefix: Int?
    /// Kind -> mean accuracy drop (positive: worse) over the layers.
    public var meanDropByKind: [String: Double]
    /// Kind (and "all") -> correlation of RMSE with the accuracy drop over layers.
    public var correlation: [String: Correlation]
    /// Tensors not compared (absent from the source, or of another shape).
    public var skipped: [String]

    enum CodingKeys: String, CodingKey {
        case source, path, swaps, reusableSwaps = "reusable_swaps", reusableNetwork = "reusable_network"
        case longestReusablePrefix = "longest_reusable_prefix", meanDropByKind = "mean_drop_by_kind", correlation, skipped
    }

    init(source: ReuseSource, rows: [ReuseReport.Row], cumulative: [ReuseReport.CumulativeRow], tolerance: Double,
         skipped: [String]) {
        self.source = source.label
        path = source.path
        swaps = rows.count
        reusableSwaps = rows.filter { withinTolerance($0.accuracyChange, tolerance) }.count
        reusableNetwork = swaps > 0 && Double(reusableSwaps) >= 0.75 * Double(swaps)
        if cumulative.isEmpty {
            longestReusablePrefix = nil
        } else {
            longestReusablePrefix = cumulative.prefix { withinTolerance($0.accuracyChange, tolerance) }.last?.layers ?? 0
        }
        var drops: [String: Double] = [:], correlation: [String: Correlation] = [:]
        for kind in Set(rows.map(\.kind)) {
            let own = rows.filter { $0.kind == kind }
            drops[kind] = own.reduce(0.0) { $0 - $1.accuracyChange } / Double(own.count)
            correlation[kind] = Correlation(pearson: pearson(own.map(\.rmse), own.map { -$0.accuracyChange }),
                                            spearman: spearman(own.map(\.rmse), own.map { -$0.accuracyChange }),
                                            count: own.count)
        }
        correlation["all"] = Correlation(pearson: pearson(rows.map(\.rmse), rows.map { -$0.accuracyChange }),
                                         spearman: spearman(rows.map(\.rmse), rows.map { -$0.accuracyChange }),
                                         count: rows.count)
        meanDropByKind = drops
        self.correlation = correlation
        self.skipped = skipped
    }
}

// MARK: Text

extension ReuseReport {
    /// The tables a person reads in the terminal: per source, every swap with its accuracy change
    /// and RMSE, the batch-norm means, the cumulative prefix, and the verdict.
    public var text: String {
        var out = chanceWarning.map { "WARNING: " + $0 + "\n" } ?? ""
        out += "target \(target): test accuracy \(pct(baselineAccuracy)), loss \(num(baselineLoss, 4)) on \(testImages) images;"
            + " tolerance \(num(tolerance * 100, 2)) points\n"
        for s in sources {
            out += "\nsource \(s.source) (\(s.path))\n"
            let rows = self.rows.filter { $0.source == s.source }
            var table = [["layer", "kind", "accuracy", "change", "loss", "rmse", "verdict"]]
            for r in rows {
                table.append([r.layer, r.kind, pct(r.accuracy), signed(r.accuracyChange * 100) + " pt", num(r.loss, 4),
                              sci(r.rmse), withinTolerance(r.accuracyChange, tolerance) ? "reusable" : "NOT"])
            }
            out += TextTable.align(table)
            let bn = layers.filter { $0.source == s.source && $0.layerType == .batchNorm }
            if !bn.isEmpty {
                var means = [["batch norm", "MRM t/s", "MRV t/s", "MRW t/s", "MRB t/s"]]
                for l in bn {
                    means.append([l.layer] + ["RM", "RV", "RW", "RB"].map { k in
                        guard let t = l.targetMeans[k], let u = l.sourceMeans[k] else { return "-" }
                        return "\(num(t, 3))/\(num(u, 3))"
                    })
                }
                out += "\n" + TextTable.align(means)
            }
            let cum = cumulative.filter { $0.source == s.source }
            if !cum.isEmpty {
                var table = [["layers 1..i", "up to", "accuracy", "change"]]
                for c in cum { table.append(["\(c.layers)", c.lastLayer, pct(c.accuracy), signed(c.accuracyChange * 100) + " pt"]) }
                out += "\n" + TextTable.align(table)
            }
            let kinds = s.meanDropByKind.keys.sorted { ParameterKind.order($0) < ParameterKind.order($1) }
            out += "\nmean drop by kind: " + kinds.map { "\($0) \(num(s.meanDropByKind[$0]! * 100, 2)) pt" }.joined(separator: ", ")
            if let c = s.correlation["all"], let p = c.pearson {
                out += "\nRMSE vs drop over \(c.count) swaps: Pearson \(num(p, 3)), Spearman \(c.spearman.map { num($0, 3) } ?? "-")"
            }
            out += "\nverdict: \(s.reusableSwaps) of \(s.swaps) swaps reusable; \(s.source) is "
                + (s.reusableNetwork ? "a reusable network" : "not a reusable network") + " for \(target)"
            if let p = s.longestReusablePrefix { out += "; longest reusable prefix: \(p) layers" }
            if !s.skipped.isEmpty { out += "\nnot compared: \(s.skipped.count) tensors (e.g. \(s.skipped[0]))" }
            out += "\n"
        }
        return out
    }
}

extension ParameterKind {
    /// Column order of the kinds in tables and figures.
    static func order(_ raw: String) -> Int { allCases.firstIndex { $0.rawValue == raw } ?? allCases.count }
}

