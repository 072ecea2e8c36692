/// The files of a grow run: `config.json`, `metrics.jsonl` (one `GrowEpoch` per line, then the
/// baseline's epochs under `baseline/`), `summary.json` (per-stage table of every series) and
/// `growth.svg` (validation accuracy, inference cost and cumulative training FLOPs over epochs).
public struct GrowthReport: Codable, Sendable {
    public var config: GrowConfig
    public var grow: GrowSummary
    public var baseline: RunSummary?

    public init(config: GrowConfig, grow: GrowSummary, baseline: RunSummary?) {
        self.config = config
        self.grow = grow
        self.baseline = baseline
    }

    public static func series(_ summary: GrowSummary, history: [GrowEpoch]) -> SVGFigure.Series {
        SVGFigure.Series(name: summary.label, epochs: history.map { Double($0.epoch) },
                         accuracy: history.map { $0.metrics.validationAccuracy ?? $0.metrics.trainAccuracy },
                         inferenceFlops: history.map(\.inferenceFlopsPerImage),
                         cumulativeTrainingFlops: history.map(\.metrics.cumulativeTrainingFlops),
                         stageMarkers: summary.stages.dropFirst().map { Double($0.firstEpoch - 1) })
    }

    public static func baselineSeries(_ history: [EpochMetrics], inferenceFlops: Double) -> SVGFigure.Series {
        SVGFigure.Series(name: "baseline (full network)", epochs: history.map { Double($0.epoch) },
                         accuracy: history.map { $0.validationAccuracy ?? $0.trainAccuracy },
                         inferenceFlops: history.map { _ in inferenceFlops },
                         cumulativeTrainingFlops: history.map(\.cumulativeTrainingFlops))
    }

    /// Writes summary.json and growth.svg into `directory` (metrics are appended as they come).
    public func write(to directory: RunDirectory, series: [SVGFigure.Series], title: String) throws {
        try directory.writeJSON(self, to: directory.summaryPath)
        let svg = SVGFigure.growthPanels(series: series, title: title)
        try FileSystem.writeAtomically(Array(svg.utf8), to: directory.figurePath)
    }
}

extension RunDirectory {
    public var figurePath: String { path + "/growth.svg" }
}
