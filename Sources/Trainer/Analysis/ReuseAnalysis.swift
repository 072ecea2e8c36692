import GPUTensor

/// A model whose tensors are swapped into the target, one kind of one layer at a time.
public struct ReuseSource {
    /// Short name for tables and figures (`B1`, the run directory's name, ...).
    public var label: String
    public var path: String
    public var file: SafeTensors

    public init(label: String, path: String, file: SafeTensors) {
        self.label = label
        self.path = path
        self.file = file
    }
}

/// Parameter-reusability analysis: how much a trained target model suffers, without retraining,
/// when one tensor of one convolution or batch-norm layer is replaced by a source model's, related
/// to the root-mean-square difference of that tensor between the two models (PR-RMSE).
///
/// The target is evaluated in inference mode on a fixed test set once as it is (the baseline),
/// then once per swap. A swap uploads only the swapped tensor and puts the target's own back
/// afterwards, so every evaluation sees the target with exactly one difference (or, with
/// `cumulative`, with layers 1...i swapped together).
///
/// Verdict rule (`ReuseReport.rule`): a swap is *reusable* when it costs at most `tolerance` of
/// test accuracy (default 0.01, one percentage point); a layer is reusable when all of its swapped
/// kinds are, partly reusable when some are; the source is a *reusable network* for the target
/// when at least 75% of its single swaps are reusable. The longest reusable prefix is the largest
/// i such that swapping layers 1...j together stays within the tolerance for every j <= i.
///
/// ```swift
/// let run = try TrainingRun.forEvaluation(checkpoint: "runs/A1/best.safetensors", dataPath: nil,
///                                         backend: CPUBackend(), batchSize: 500)
/// let analysis = ReuseAnalysis(target: run, testSet: run.data.test!, targetLabel: "A1")
/// let report = try analysis.analyse(sources: [source], options: .init(kinds: ParameterKind.allCases))
/// ```
public final class ReuseAnalysis {
    public struct Options: Sendable {
        public var kinds: [ParameterKind]
        /// Also swap layers 1...i together, for every i.
        public var cumulative: Bool
        /// Largest accuracy drop (a fraction) for which a swap counts as reusable.
        public var tolerance: Double

        public init(kinds: [ParameterKind] = ParameterKind.allCases, cumulative: Bool = false, tolerance: Double = 0.01) {
            self.kinds = kinds
            self.cumulative = cumulative
            self.tolerance = tolerance
        }
    }

    public let run: TrainingRun
    public let testSet: ImageDataset
    public let targetLabel: String
    public let layers: [SwappableLayer]
    var backend: Backend { run.backend }

    public init(target run: TrainingRun, testSet: ImageDataset, targetLabel: String) {
        self.run = run
        self.testSet = testSet
        self.targetLabel = targetLabel
        layers = SwappableLayer.layers(of: run.model)
    }

    /// The target's own test loss and accuracy.
    public func baseline() throws -> Evaluation { try run.evaluate(testSet) }

    /// Evaluates every swap of every source; `progress` hears of each evaluation (done and total
    /// within the current source and pass, and what was swapped).
    public func analyse(sources: [ReuseSource], options: Options,
                        progress: (_ done: Int, _ total: Int, _ what: String) -> Void = { _, _, _ in }) throws -> ReuseReport {
        guard !sources.isEmpty else { throw ReuseAnalysisError("give at least one source model") }
        let base = try baseline()
        var report = ReuseReport(target: targetLabel, testImages: testSet.count, baselineAccuracy: base.accuracy,
                                 baselineLoss: base.loss, tolerance: options.tolerance, kinds: options.kinds.map(\.rawValue))
        for source in sources {
            try analyse(source, options: options, baseline: base, into: &report, progress: progress)
        }
        return report
    }

    private func analyse(_ source: ReuseSource, options: Options, baseline base: Evaluation,
                         into report: inout ReuseReport, progress: (Int, Int, String) -> Void) throws {
        // Pairs (layer, kind) both models have with the same shape; the rest is listed as skipped.
        var pairs: [(layer: SwappableLayer, kind: ParameterKind, tensor: Tensor, values: [Float], rmse: Double)] = []
        var skipped: [String] = []
        var statistics: [LayerStatistics] = []
        for layer in layers {
            var stats = LayerStatistics(source: source.label, layer: layer.name, layerType: layer.type)
            for kind in options.kinds where kind.layerType == layer.type {
                guard let tensor = layer.tensors[kind] else { continue }
                let name = layer.tensorName(kind)
                guard let entry = source.file[name] else { skipped.append("\(name): not in the source"); continue }
                guard entry.shape == tensor.shape else {
                    skipped.append("\(name): shape \(entry.shape) in the source, \(tensor.shape) in the target")
                    continue
                }
                let theirs = try source.file.floats(name, shape: tensor.shape, file: source.path)
                let ours = try backend.download(tensor)
                let rmse = rootMeanSquareDifference(ours, theirs)
                stats.rmse[kind.rawValue] = rmse
                if layer.type == .batchNorm {
                    stats.targetMeans[kind.rawValue] = mean(ours)
                    stats.sourceMeans[kind.rawValue] = mean(theirs)
                }
                pairs.append((layer, kind, tensor, theirs, rmse))
            }
            if !stats.rmse.isEmpty { statistics.append(stats) }
        }

        // One swap at a time, the target's own tensor restored after each.
        var rows: [ReuseReport.Row] = []
        for (i, pair) in pairs.enumerated() {
            let own = try backend.download(pair.tensor)
            backend.upload(pair.values, to: pair.tensor)
            let result: Evaluation
            do { result = try run.evaluate(testSet) } catch {
                backend.upload(own, to: pair.tensor)
                throw error
            }
            backend.upload(own, to: pair.tensor)
            rows.append(ReuseReport.Row(source: source.label, layer: pair.layer.name, layerType: pair.layer.type,
                                        kind: pair.kind.rawValue, accuracy: result.accuracy,
                                        baselineAccuracy: base.accuracy, loss: result.loss, baselineLoss: base.loss,
                                        rmse: pair.rmse))
            progress(i + 1, pairs.count, "\(source.label): \(pair.layer.name) \(pair.kind.rawValue)")
        }

        // Layers 1...i together: each step adds one layer's tensors on top of the previous ones.
        var cumulative: [ReuseReport.CumulativeRow] = []
        if options.cumulative {
            let byLayer = Dictionary(grouping: pairs.indices, by: { pairs[$0].layer.name })
            let order = layers.map(\.name).filter { byLayer[$0] != nil }
            var saved: [(Tensor, [Float])] = []
            defer { for (t, v) in saved.reversed() { backend.upload(v, to: t) } }
            for (i, name) in order.enumerated() {
                for p in byLayer[name]! {
                    saved.append((pairs[p].tensor, try backend.download(pairs[p].tensor)))
                    backend.upload(pairs[p].values, to: pairs[p].tensor)
                }
                let result = try run.evaluate(testSet)
                cumulative.append(ReuseReport.CumulativeRow(source: source.label, layers: i + 1, lastLayer: name,
                                                            accuracy: result.accuracy, loss: result.loss,
                                                            accuracyChange: result.accuracy - base.accuracy))
                progress(i + 1, order.count, "\(source.label): layers 1..\(i + 1) (up to \(name))")
            }
        }

        for k in statistics.indices {
            let own = rows.filter { $0.layer == statistics[k].layer }
            statistics[k].verdict = LayerStatistics.verdict(own, tolerance: options.tolerance)
        }
        report.rows += rows
        report.cumulative += cumulative
        report.layers += statistics
        report.sources.append(SourceSummary(source: source, rows: rows, cumulative: cumulative,
                                            tolerance: options.tolerance, skipped: skipped))
    }
}

public struct ReuseAnalysisError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: Statistics

/// sqrt(mean((a - b)^2)), accumulated in Double.
func rootMeanSquareDifference(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    guard !a.isEmpty else { return 0 }
    var sum = 0.0
    for i in a.indices {
        let d = Double(a[i]) - Double(b[i])
        sum += d * d
    }
    return (sum / Double(a.count)).squareRoot()
}

func mean(_ values: [Float]) -> Double {
    values.isEmpty ? 0 : values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
}

/// Pearson's correlation; nil with fewer than 3 points or no spread.
func pearson(_ x: [Double], _ y: [Double]) -> Double? {
    let n = min(x.count, y.count)
    guard n >= 3 else { return nil }
    let mx = x.prefix(n).reduce(0, +) / Double(n), my = y.prefix(n).reduce(0, +) / Double(n)
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in 0..<n {
        sxy += (x[i] - mx) * (y[i] - my)
        sxx += (x[i] - mx) * (x[i] - mx)
        syy += (y[i] - my) * (y[i] - my)
    }
    guard sxx > 0 && syy > 0 else { return nil }
    return sxy / (sxx * syy).squareRoot()
}

/// Spearman's rank correlation (Pearson on average ranks, ties averaged).
func spearman(_ x: [Double], _ y: [Double]) -> Double? {
    pearson(ranks(x), ranks(y))
}

func ranks(_ v: [Double]) -> [Double] {
    let order = v.indices.sorted { v[$0] < v[$1] }
    var r = [Double](repeating: 0, count: v.count)
    var i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
        let rank = Double(i + j) / 2 + 1
        for k in i...j { r[order[k]] = rank }
        i = j + 1
    }
    return r
}

/// Whether an accuracy change stays within the tolerance (a drop equal to it counts as within:
/// accuracies are ratios of counts, so allow for their rounding).
func withinTolerance(_ change: Double, _ tolerance: Double) -> Bool { -change <= tolerance + 1e-9 }
