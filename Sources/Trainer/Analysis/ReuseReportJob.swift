import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `strata reuse-report`: loads the target and source checkpoints, evaluates every swap on the
/// test set of `dataPath` (default: the target's own dataset) and writes `report.json`,
/// `report.txt`, `heatmap.svg` and `rmse-vs-drop.svg` into `output`.
public struct ReuseReportJob {
    public var target: String
    public var sources: [String]
    public var dataPath: String?
    public var options: ReuseAnalysis.Options
    /// Evaluate on this many test images (a seeded sample), for quick studies; nil: all.
    public var testLimit: Int?
    public var batchSize: Int
    public var output: String
    /// Replace the report files of an earlier run in `output`.
    public var overwrite: Bool
    /// The heatmap's fixed colour scale in accuracy points, [min, max] (`--color-scale`).
    public var colorScale: [Double]?

    public init(target: String, sources: [String], dataPath: String? = nil, options: ReuseAnalysis.Options,
                testLimit: Int? = nil, batchSize: Int = 500, output: String, overwrite: Bool = false) {
        self.target = target
        self.sources = sources
        self.dataPath = dataPath
        self.options = options
        self.testLimit = testLimit
        self.batchSize = batchSize
        self.output = output
        self.overwrite = overwrite
    }

    public static let files = ["report.json", "report.txt", "heatmap.svg", "rmse-vs-drop.svg"]

    public func run(backend: Backend, progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> ReuseReport {
        guard !sources.isEmpty else { throw ReuseAnalysisError("--source: give at least one source model") }
        guard testLimit.map({ $0 > 0 }) ?? true else { throw ReuseAnalysisError("--test-limit must be at least 1") }
        guard batchSize > 0 else { throw ReuseAnalysisError("--batch-size must be at least 1") }
        let existing = Self.files.map { output + "/" + $0 }.filter { FileManager.default.fileExists(atPath: $0) }
        if !existing.isEmpty && !overwrite {
            throw ReuseAnalysisError("\(output) already holds a reuse report (\(existing[0])); pass --overwrite to replace it")
        }
        let targetPath = RunDirectory.resolveCheckpoint(target)
        let run = try TrainingRun.forEvaluation(checkpoint: targetPath, dataPath: dataPath, backend: backend,
                                                batchSize: batchSize)
        guard var test = run.data.test, test.count > 0 else {
            throw ReuseAnalysisError("\(run.config.data.path) has no test images to evaluate on")
        }
        if let limit = testLimit, limit < test.count {
            let sample = Shuffle.permutation(count: test.count, seed: 0, counter: 0x5245_5553_45).prefix(limit).sorted()
            test = test.subset(Array(sample), name: test.name)
        }
        let loaded = try sources.map { path -> ReuseSource in
            let file = RunDirectory.resolveCheckpoint(path)
            return ReuseSource(label: Self.label(path), path: file, file: try SafeTensors.read(from: file))
        }
        let labels = loaded.map(\.label)
        guard Set(labels).count == labels.count else {
            throw ReuseAnalysisError("--source: two sources are both named '\(labels.first { l in labels.filter { $0 == l }.count > 1 }!)'; give them different run directory names")
        }
        let analysis = ReuseAnalysis(target: run, testSet: test, targetLabel: Self.label(target))
        var report = try analysis.analyse(sources: loaded, options: options, progress: progress)
        (report.classes, report.colorScale) = (run.config.model.classes, colorScale)
        try write(report)
        return report
    }

    public func write(_ report: ReuseReport) throws {
        let dir = RunDirectory(path: output)
        try dir.create()
        try dir.writeJSON(report, to: output + "/report.json")
        try FileSystem.writeAtomically(Array(report.text.utf8), to: output + "/report.txt")
        try FileSystem.writeAtomically(Array(ReuseFigures.heatmap(report).utf8), to: output + "/heatmap.svg")
        try FileSystem.writeAtomically(Array(ReuseFigures.scatter(report).utf8), to: output + "/rmse-vs-drop.svg")
    }

    /// `runs/B1` -> `B1`; `runs/B1/best.safetensors` -> `B1`; `x/model.safetensors` -> `model`.
    static func label(_ path: String) -> String {
        var parts = path.split(separator: "/").map(String.init)
        guard var last = parts.popLast() else { return path }
        if last.hasSuffix(".safetensors") {
            last = String(last.dropLast(".safetensors".count))
            if (last == "best" || last == "last"), let parent = parts.last { return parent }
        }
        return last
    }
}
