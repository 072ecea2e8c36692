import XCTest
import GPUTensor
@testable import Trainer

/// The HTML and SVG reports: written while a search runs, total on hostile journal values,
/// labelled figures, and the grow summary's per-stage validation accuracy.
final class ReportTests: XCTestCase {
    let dummyData = DataConfig(kind: "cifar10", path: "/nonexistent", augment: false)

    static func record(_ id: String, layers: Int, donor: String? = nil, loss: Double?, seconds: Double,
                       cpu: Double? = nil, status: StudyEvent.Kind = .finished) -> StudyEvent {
        .searchTrial(TrialConfig(convLayers: layers, filters: 8, hidden: [16], lr: 0.0015744882086343402, batchSize: 32, epochs: 1),
                     status, id: id, donor: donor, reuseLayers: donor == nil ? 0 : layers - 1,
                     error: status == .failed ? "diverged" : nil, validationLoss: loss, validationAccuracy: loss.map { 1 / (1 + $0) },
                     testAccuracy: 0.5, seconds: seconds, wallSeconds: seconds + 1, flopsExecuted: 81.1e6, epochs: 1, cpuSeconds: cpu)
    }

    /// A journal with 1e308 seconds, NaN and infinite losses used to trap in the number formatting.
    func testSearchReportSurvivesHostileJournalValues() {
        let hostile: [Double] = [1e308, -1e308, .nan, .infinity, -.infinity, -0.0, 5e-324, .greatestFiniteMagnitude, 9.3e18]
        var records: [StudyEvent] = []
        for (i, x) in hostile.enumerated() {
            var r = Self.record("t\(i)", layers: 1 + i % 3, donor: i % 3 == 0 ? nil : "t\(i - 1)", loss: x, seconds: x, cpu: x)
            r.flopsExecuted = x
            r.flopsSkipped = -x
            r.wallSeconds = x
            records.append(r)
        }
        let summary = SearchSummary(name: "hostile", reuse: .paper, records: records, searchSeconds: 1e308)
        let html = SearchReport.html(searches: [(summary, records), (summary, records)], title: "hostile")
        XCTAssertTrue(html.contains("</html>"))
        XCTAssertFalse(html.contains("=\"nan\"") || html.contains("=\"inf\""), "SVG attributes must stay numbers")
        // Every hpo figure too.
        let config = try? hpoConfig()
        if let config {
            let trials = hostile.enumerated().map { i, x in
                StudyEvent.hpoTrial(i, [.finished, .pruned, .failed, .rung][i % 4],
                                    params: ["lr": .float(x), "batch_size": .int(i), "optimizer": .choice(i % 2 == 0 ? "adam" : "sgd")],
                                    values: [x, -x, x], seconds: x, wallSeconds: x, rungs: [1, 3, 99, -5])
            }
            let s = HPOSummary(trials: trials.count, complete: 1, pruned: 1, failed: 1, bestTrial: 0, searchSeconds: 1e308,
                               trialModel: "cnn", trialParameters: Int.max, trialFlopsPerImage: .nan)
            let page = HPOReport.html(runs: [.init(name: "x", config: config, summary: s, records: trials)], comparison: nil, title: "h")
            XCTAssertTrue(page.contains("</html>"))
        }
    }

    func testSearchReportShowsCPUSecondsTicksAndALabelledDonorGraph() {
        let records = [
            Self.record("aaaaaaaa11111111", layers: 1, loss: 0.9, seconds: 3, cpu: 5.5),
            Self.record("bbbbbbbb22222222", layers: 2, donor: "aaaaaaaa11111111", loss: 0.7, seconds: 2, cpu: 3.25),
            Self.record("cccccccc33333333", layers: 3, donor: "bbbbbbbb22222222", loss: 0.6, seconds: 2, cpu: 3),
            Self.record("dddddddd44444444", layers: 2, loss: nil, seconds: 1, status: .failed),
        ]
        let summary = SearchSummary(name: "paper", reuse: .paper, records: records)
        XCTAssertEqual(summary.cpuSeconds, 11.75)
        let html = SearchReport.html(searches: [(summary, records)], title: "t")
        XCTAssertTrue(html.contains("<th>CPU s</th>"))
        XCTAssertTrue(html.contains("<td>11.8</td>"), "the summary's CPU seconds")
        XCTAssertTrue(html.contains("lr 1.57e-3"), "hyperparameters at 3 significant digits")
        XCTAssertTrue(html.contains("<td>324M</td>"), "4 x 81.1M FLOPs executed")
        // Donor graph: ids as labels, hover titles, arrows and a legend.
        let graph = SearchReport.donorGraph(records)
        XCTAssertTrue(graph.contains(">aaaaaaaa 0.900</text>"))
        XCTAssertTrue(graph.contains("marker-end=\"url(#arrow)\""))
        XCTAssertTrue(graph.contains("<title>aaaaaaaa11111111 -&gt; bbbbbbbb22222222</title>"))
        XCTAssertTrue(graph.contains("donor aaaaaaaa11111111 (1 conv layer reused)"))
        XCTAssertTrue(graph.contains("from scratch") && graph.contains("with a donor") && graph.contains("failed"))
        // Cumulative time: x ticks at whole trials, y ticks at round seconds.
        let chart = SearchReport.cumulative([("paper", records.map { $0.seconds ?? 0 })], cpu: [records.map { $0.cpuSeconds ?? 0 }])
        for tick in [">0</text>", ">1</text>", ">2</text>", ">3</text>", ">4</text>", ">10</text>"] {
            XCTAssertTrue(chart.contains(tick), tick)
        }
        XCTAssertTrue(chart.contains("stroke-dasharray=\"6,4\""), "CPU seconds dashed")
    }

    /// The engine rewrites report.html and summary.json after every trial, not only at the end.
    func testSearchReportIsWrittenAsTrialsFinish() throws {
        let dir = try makeTemporaryDirectory(self)
        let space = SearchSpace(name: "t", convLayers: [1], filters: [4], hidden: [[8]], lr: [0.01, 0.001], batchSize: [8], epochs: 1)
        let settings = SearchSettings(space: space, reuse: .none, data: dummyData)
        var seen: [Int] = []
        let directory = SearchDirectory(path: dir)
        let executor = InProcessExecutor(body: { job in
            // When the second trial runs, the first one's report is already there.
            if let text = try? FileSystem.readFile(directory.reportPath) { seen.append(String(decoding: text, as: UTF8.self).count) }
            return fakeOutcome(job)
        })
        let engine = SearchEngine(directory: directory, settings: settings, executor: executor, threadsPerTrial: 1)
        _ = try engine.run()
        XCTAssertEqual(seen.count, 1, "report.html exists before the last trial ends")
        let summary = try SearchJSON.read(SearchSummary.self, from: directory.summaryPath)
        XCTAssertEqual(summary.trials, 2)
    }

    func hpoConfig() throws -> HPOConfig {
        let train = smallConfig(data: "/nonexistent", epochs: 9)
        let space = try HPOSpace([("lr", .float(low: 1e-4, high: 1e-1, log: true)), ("batch_size", .int(low: 8, high: 64, log: false)),
                                  ("optimizer", .categorical(["adam", "sgd"]))])
        return HPOConfig(trial: train, final: train, space: space, sampler: .tpe, pruner: .asha, objective: .accuracy,
                         trials: 4, finalEpochs: 0, proxy: nil)
    }

    func testHPOReportPlotsScoresParallelCoordinatesAndLearningCurvesWithRungs() throws {
        let config = try hpoConfig()
        let records = [
            StudyEvent.hpoTrial(0, .finished, params: ["lr": .float(0.0031), "batch_size": .int(16), "optimizer": .choice("adam")],
                                values: [-0.3, -0.4, -0.5, -0.55, -0.6, -0.6, -0.61, -0.62, -0.63], seconds: 9,
                                wallSeconds: 10, rungs: [1, 3, 9]),
            StudyEvent.hpoTrial(1, .pruned, params: ["lr": .float(0.09), "batch_size": .int(64), "optimizer": .choice("sgd")],
                                values: [-0.1], seconds: 1, wallSeconds: 1.5, rungs: [1]),
        ]
        let summary = HPOSummary(trials: 2, complete: 1, pruned: 1, failed: 0, bestTrial: 0, bestParams: records[0].params,
                                 bestScore: 0.63, searchSeconds: 11.5, trialModel: "cnn", trialParameters: 12345,
                                 trialFlopsPerImage: 81.1e6)
        let html = HPOReport.html(runs: [.init(name: "search", config: config, summary: summary, records: records)],
                                  comparison: nil, title: "t")
        for needle in ["Score against each hyperparameter", "lr (log)", "Parallel coordinates", "Learning curves",
                       "rung (pruner decided)", "81.1M", "12.3k", "lr=3.10e-3", "white-space:nowrap", "class=\"scroll\""] {
            XCTAssertTrue(html.contains(needle), needle)
        }
        // The log axis of lr has its decades as ticks; the pruned trial's end is a cross.
        let panels = HPOReport.scoreAgainstParameters(.init(name: "s", config: config, summary: summary, records: records))
        XCTAssertTrue(panels.contains(">1e-4</text>") && panels.contains(">0.1</text>"))
        let curves = HPOReport.learningCurves(.init(name: "s", config: config, summary: summary, records: records))
        XCTAssertEqual(curves.components(separatedBy: "<circle").count - 1, 1 + 3, "legend dot + trial 0's three rungs")
        XCTAssertTrue(curves.contains("<path d=\"M"), "trial 1 pruned at its rung: a cross")
    }

    func testReuseHeatmapFitsItsTitleTakesAFixedScaleAndWarnsAtChance() throws {
        var report = ReuseReport(target: "resnet20-with-a-long-name", testImages: 1000, baselineAccuracy: 0.104, baselineLoss: 2.3,
                                 tolerance: 0.01, kinds: ["W"])
        report.rows = [ReuseReport.Row(source: "B", layer: "layer3.2.conv2", layerType: .convolution, kind: "W",
                                       accuracy: 0.094, baselineAccuracy: 0.104, loss: 2.3, baselineLoss: 2.3, rmse: 0.01)]
        report.layers = [LayerStatistics(source: "B", layer: "layer3.2.conv2", layerType: .convolution)]
        report.sources = [SourceSummary(source: ReuseSource(label: "B", path: "b", file: SafeTensors()), rows: report.rows,
                                        cumulative: [], tolerance: 0.01, skipped: [])]
        // No classes known: no warning. 10 classes and 10.4% on 1000 images: at chance.
        XCTAssertNil(report.chanceWarning)
        report.classes = 10
        XCTAssertNotNil(report.chanceWarning)
        XCTAssertTrue(report.text.hasPrefix("WARNING: the target resnet20-with-a-long-name is at chance accuracy"))
        var svg = ReuseFigures.heatmap(report)
        XCTAssertTrue(svg.contains("WARNING: the target"))
        let width = try XCTUnwrap(Double(svg.components(separatedBy: "width=\"")[1].prefix { $0 != "\"" }))
        let title = "Accuracy change of resnet20-with-a-long-name when one tensor is swapped in (points)"
        XCTAssertGreaterThanOrEqual(width, Double(title.count) * 8.5, "the title fits")
        XCTAssertTrue(svg.contains("colour scale -1.0 to +1.0 points"))
        // A fixed scale: -5,5 whatever the data, so two heatmaps compare.
        report.colorScale = try ReuseReport.parseColorScale("-5,5")
        svg = ReuseFigures.heatmap(report)
        XCTAssertTrue(svg.contains("colour scale -5.0 to +5.0 points (fixed)"))
        XCTAssertEqual(try ReuseReport.parseColorScale("3"), [-3, 3])
        for bad in ["", "5,-5", "0,5", "a,b", "-1,2,3", "nan,1", "-inf,5"] {
            XCTAssertThrowsError(try ReuseReport.parseColorScale(bad), bad)
        }
        // 60% on 10 classes is no warning.
        report.baselineAccuracy = 0.6
        XCTAssertNil(report.chanceWarning)
    }

    /// The budget ends during a look-ahead: the new stage's row has the look-ahead's validation
    /// accuracy (metrics.jsonl has it), not nil from the next run's empty history.
    func testGrowStageEndingInItsLookAheadKeepsItsValidationAccuracy() throws {
        let data = try makeTemporaryDirectory(self)
        try writeRandomCIFAR(data, train: 80, test: 20)
        let train = smallConfig(data: data, filters: [4, 6, 8], epochs: 3, dropout: 0)
        let config = GrowConfig(train: train, startStages: 1, window: 2, gamma: 0.5, initialization: .lookahead,
                                lookaheadEpochs: 1, maxEpochs: 3, maxEpochsPerStage: 2)
        let grower = Grower(config: config, backend: CPUBackend(), data: try RunData.load(config.train.data, seed: 11))
        let (summary, _) = try grower.run()
        XCTAssertEqual(grower.history.map(\.phase), ["train", "train", "lookahead"])
        XCTAssertEqual(summary.stages.map(\.stages), [1, 2])
        let lookahead = try XCTUnwrap(grower.history.last?.metrics.validationAccuracy)
        XCTAssertEqual(summary.stages[1].validationAccuracy, lookahead)
        XCTAssertEqual(summary.stages[0].validationAccuracy, grower.history[1].metrics.validationAccuracy)
        XCTAssertEqual(summary.finalValidationAccuracy, lookahead)
    }
}
