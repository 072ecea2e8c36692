import GPUTensor
@testable import Trainer
import XCTest
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The reusability analysis on a model small enough to compute by hand:
/// x (1x2x2) -> conv1 (1->2, 1x1, bias) -> bn1 (2) -> global average pool -> fc (2->2).
/// In inference mode the logits of an image whose pixels average m are
///     z_k = fc.b[k] + sum_c fc.W[k,c] * (gamma_c * (w_c*m + b_c - rm_c) / sqrt(rv_c + eps) + beta_c)
/// (the 1x1 conv and batch norm are affine per pixel, so they commute with the average).
final class ReuseAnalysisTests: XCTestCase {
    struct Params {
        var w: [Double] = [0.5, -1.5], b: [Double] = [0.1, 0.2]
        var gamma: [Double] = [1.2, 0.8], beta: [Double] = [0.05, -0.1]
        var rm: [Double] = [0.3, -0.2], rv: [Double] = [0.5, 2.0]
        var fcW: [Double] = [1, -2, 0.5, 1.5], fcB: [Double] = [0.1, -0.3]
    }

    // Pixels of the four test images and their labels.
    let pixels: [[UInt8]] = [[0, 51, 102, 255], [255, 255, 204, 153], [10, 20, 30, 40], [200, 100, 50, 25]]
    let labels: [Int32] = [0, 1, 1, 0]

    func makeRun(_ p: Params) throws -> TrainingRun {
        let model = Model(inputShape: [1, 2, 2], stages: [("stage1", [
            Conv2D(name: "conv1", inChannels: 1, outChannels: 2, kernel: 1),
            BatchNorm2D(name: "bn1", channels: 2),
        ])], classifier: [GlobalAvgPool(), Dense(name: "fc", inFeatures: 2, outFeatures: 2)])
        let backend = CPUBackend()
        try model.prepare(on: backend, maxBatch: 4)
        let values: [String: [Double]] = ["conv1.weight": p.w, "conv1.bias": p.b, "bn1.weight": p.gamma, "bn1.bias": p.beta,
                                          "bn1.running_mean": p.rm, "bn1.running_var": p.rv, "fc.weight": p.fcW, "fc.bias": p.fcB]
        for (name, tensor) in model.stateDict { backend.upload(values[name]!.map(Float.init), to: tensor) }
        let data = ImageDataset(name: "tiny", channels: 1, height: 2, width: 2, pixels: pixels.flatMap { $0 },
                                labels: labels, classes: 2)
        let config = TrainConfig(modelName: "tiny", model: .cnn(CNNOptions(filters: [2], kernel: 1, hidden: []), input: ImageShape(channels: 1, height: 2, width: 2), classes: 2),
                                 data: DataConfig(path: "none", validationFraction: 0, augment: false),
                                 epochs: 1, batchSize: 2, evalBatchSize: 3, optimizer: .sgd(learningRate: 0.1))
        return try TrainingRun(config: config, backend: backend, data: RunData(train: data, validation: nil, test: data),
                               model: model, normalization: (mean: [0], std: [1]))
    }

    /// Mean cross-entropy and accuracy of the formula above over the four images.
    func byHand(_ p: Params) -> (loss: Double, accuracy: Double) {
        var loss = 0.0, correct = 0
        for (i, image) in pixels.enumerated() {
            let m = image.reduce(0.0) { $0 + Double(Float($1) / 255) } / 4
            let h = (0..<2).map { c in p.gamma[c] * (p.w[c] * m + p.b[c] - p.rm[c]) / (p.rv[c] + 1e-5).squareRoot() + p.beta[c] }
            let z = (0..<2).map { k in p.fcB[k] + p.fcW[2 * k] * h[0] + p.fcW[2 * k + 1] * h[1] }
            let top = max(z[0], z[1])
            let logSum = top + log(exp(z[0] - top) + exp(z[1] - top))
            loss += logSum - z[Int(labels[i])]
            if (z[1] > z[0] ? 1 : 0) == Int(labels[i]) { correct += 1 }
        }
        return (loss / 4, Double(correct) / 4)
    }

    func source(_ p: Params, from run: TrainingRun) throws -> SafeTensors {
        let other = try makeRun(p)
        var file = SafeTensors()
        try ModelState.append(other.model, to: &file, batchesTracked: 0)
        return file
    }

    func testTheBaselineMatchesTheFormula() throws {
        let run = try makeRun(Params())
        let base = try ReuseAnalysis(target: run, testSet: run.data.test!, targetLabel: "t").baseline()
        let hand = byHand(Params())
        XCTAssertEqual(base.loss, hand.loss, accuracy: 1e-5 * max(1, abs(hand.loss)))
        XCTAssertEqual(base.accuracy, hand.accuracy)
    }

    func testSwappingAnIdenticalTensorChangesNothing() throws {
        let run = try makeRun(Params())
        let analysis = ReuseAnalysis(target: run, testSet: run.data.test!, targetLabel: "t")
        let same = ReuseSource(label: "same", path: "same", file: try source(Params(), from: run))
        let report = try analysis.analyse(sources: [same], options: .init(cumulative: true))
        XCTAssertEqual(report.rows.count, 6, "W, B of conv1 and RM, RV, RW, RB of bn1")
        XCTAssertEqual(Set(report.rows.map(\.kind)), ["W", "B", "RM", "RV", "RW", "RB"])
        for row in report.rows {
            XCTAssertEqual(row.accuracy, report.baselineAccuracy, "\(row.layer) \(row.kind)")
            XCTAssertEqual(row.loss, report.baselineLoss, "\(row.layer) \(row.kind): bit-identical evaluation")
            XCTAssertEqual(row.rmse, 0)
        }
        XCTAssertEqual(report.cumulative.map(\.layers), [1, 2])
        XCTAssertTrue(report.cumulative.allSatisfy { $0.accuracyChange == 0 })
        XCTAssertEqual(report.sources[0].reusableSwaps, 6)
        XCTAssertTrue(report.sources[0].reusableNetwork)
        XCTAssertEqual(report.sources[0].longestReusablePrefix, 2)
    }

    func testSwappingADifferentTensorChangesTheOutputsAsComputedByHand() throws {
        let target = Params()
        var other = Params()
        other.w = [-0.5, 3.0]            // conv1.weight
        other.rv = [4.0, 0.1]            // bn1.running_var
        other.beta = [0.5, -0.6]         // bn1.bias
        let run = try makeRun(target)
        let before = try run.model.stateDict.map { try run.backend.download($0.tensor) }
        let analysis = ReuseAnalysis(target: run, testSet: run.data.test!, targetLabel: "t")
        let report = try analysis.analyse(sources: [ReuseSource(label: "other", path: "other", file: try source(other, from: run))],
                                          options: .init(cumulative: true, tolerance: 0.01))

        func row(_ layer: String, _ kind: String) throws -> ReuseReport.Row {
            try XCTUnwrap(report.rows.first { $0.layer == layer && $0.kind == kind })
        }
        func expectRow(_ layer: String, _ kind: String, _ p: Params, rmse: Double, line: UInt = #line) throws {
            let r = try row(layer, kind), hand = byHand(p)
            XCTAssertEqual(r.loss, hand.loss, accuracy: 1e-5 * max(1, abs(hand.loss)), "\(layer) \(kind) loss", line: line)
            XCTAssertEqual(r.accuracy, hand.accuracy, "\(layer) \(kind) accuracy", line: line)
            XCTAssertEqual(r.rmse, rmse, accuracy: 1e-6, "\(layer) \(kind) rmse", line: line)
        }
        var onlyW = target; onlyW.w = other.w
        try expectRow("conv1", "W", onlyW, rmse: ((1.0 * 1.0 + 4.5 * 4.5) / 2).squareRoot())
        var onlyRV = target; onlyRV.rv = other.rv
        try expectRow("bn1", "RV", onlyRV, rmse: ((3.5 * 3.5 + 1.9 * 1.9) / 2).squareRoot())
        var onlyRB = target; onlyRB.beta = other.beta
        try expectRow("bn1", "RB", onlyRB, rmse: ((0.45 * 0.45 + 0.5 * 0.5) / 2).squareRoot())
        for (layer, kind) in [("conv1", "B"), ("bn1", "RM"), ("bn1", "RW")] {
            let r = try row(layer, kind)
            XCTAssertEqual(r.rmse, 0, "\(layer) \(kind) is the same in both")
            XCTAssertEqual(r.loss, report.baselineLoss)
        }
        // Cumulative: conv1 alone, then conv1 and bn1 together.
        XCTAssertEqual(report.cumulative.count, 2)
        XCTAssertEqual(report.cumulative[0].loss, byHand(onlyW).loss, accuracy: 1e-5)
        var both = onlyW; both.rv = other.rv; both.beta = other.beta
        XCTAssertEqual(report.cumulative[1].loss, byHand(both).loss, accuracy: 1e-5)
        // The target is left exactly as it was.
        let after = try run.model.stateDict.map { try run.backend.download($0.tensor) }
        XCTAssertEqual(before, after)
        // The batch-norm means (MRV, MRB) of both models.
        let bn = try XCTUnwrap(report.layers.first { $0.layer == "bn1" })
        XCTAssertEqual(bn.targetMeans["RV"]!, 1.25, accuracy: 1e-6)
        XCTAssertEqual(bn.sourceMeans["RV"]!, 2.05, accuracy: 1e-6)
        XCTAssertEqual(bn.sourceMeans["RB"]!, -0.05, accuracy: 1e-6)
    }

    func testVerdictsFollowTheDocumentedRule() throws {
        func r(_ change: Double, _ kind: String = "W", rmse: Double = 1) -> ReuseReport.Row {
            ReuseReport.Row(source: "s", layer: "l\(change)", layerType: .convolution, kind: kind, accuracy: 0.9 + change,
                            baselineAccuracy: 0.9, loss: 1, baselineLoss: 1, rmse: rmse)
        }
        let src = ReuseSource(label: "s", path: "p", file: SafeTensors())
        let rows = [r(0), r(-0.005), r(-0.01), r(-0.3)]
        let cum = [0.0, -0.002, -0.05, 0].enumerated().map {
            ReuseReport.CumulativeRow(source: "s", layers: $0.offset + 1, lastLayer: "x", accuracy: 0.9 + $0.element, loss: 1,
                                      accuracyChange: $0.element)
        }
        let s = SourceSummary(source: src, rows: rows, cumulative: cum, tolerance: 0.01, skipped: [])
        XCTAssertEqual(s.reusableSwaps, 3, "a drop equal to the tolerance still counts as reusable")
        XCTAssertTrue(s.reusableNetwork, "3 of 4 is 75%")
        XCTAssertEqual(s.longestReusablePrefix, 2, "the prefix stops at the first step past the tolerance")
        XCTAssertFalse(SourceSummary(source: src, rows: rows + [r(-0.2)], cumulative: [], tolerance: 0.01, skipped: []).reusableNetwork)
        XCTAssertEqual(LayerStatistics.verdict([r(0), r(-0.3)], tolerance: 0.01), "partly reusable")
        XCTAssertEqual(LayerStatistics.verdict([r(-0.3)], tolerance: 0.01), "not reusable")
    }

    func testCorrelationsAndReportKeys() throws {
        XCTAssertEqual(pearson([1, 2, 3, 4], [2, 4, 6, 8])!, 1, accuracy: 1e-12)
        XCTAssertEqual(spearman([1, 2, 3, 4], [1, 10, 100, 1000])!, 1, accuracy: 1e-12)
        XCTAssertEqual(spearman([1, 2, 3, 4], [4, 3, 2, 1])!, -1, accuracy: 1e-12)
        XCTAssertNil(pearson([1, 1, 1], [1, 2, 3]), "no spread, no correlation")
        XCTAssertEqual(ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])

        let run = try makeRun(Params())
        var other = Params(); other.w = [2, 2]
        let report = try ReuseAnalysis(target: run, testSet: run.data.test!, targetLabel: "t")
            .analyse(sources: [ReuseSource(label: "o", path: "o", file: try source(other, from: run))], options: .init(kinds: [.weight, .runningVariance]))
        XCTAssertEqual(report.rows.map(\.kind), ["W", "RV"], "only the kinds asked for")
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as! [String: Any]
        let row = try XCTUnwrap((json["rows"] as? [[String: Any]])?.first)
        for key in ["layer", "kind", "accuracy", "baseline_accuracy", "loss", "rmse"] { XCTAssertNotNil(row[key], key) }
        XCTAssertEqual(try JSONDecoder().decode(ReuseReport.self, from: JSONEncoder().encode(report)), report)
        XCTAssertTrue(report.text.contains("conv1"))
        let svg = ReuseFigures.heatmap(report) + ReuseFigures.scatter(report)
        XCTAssertFalse(svg.contains("nan") || svg.contains("inf"), "figures never carry non-finite numbers")
    }

    func testKindListsAndShapeMismatches() throws {
        XCTAssertEqual(try ParameterKind.parseList("W, rv,W"), [.weight, .runningVariance])
        XCTAssertThrowsError(try ParameterKind.parseList("W,XX")) { XCTAssertTrue("\($0)".contains("'XX'")) }
        // A source whose conv1.weight has another shape is not compared, and says so.
        let run = try makeRun(Params())
        var file = try source(Params(), from: run)
        let i = file.tensors.firstIndex { $0.name == "conv1.weight" }!
        file.tensors[i] = SafeTensors.Entry(name: "conv1.weight", shape: [1, 1, 1, 1], values: .float32([1]))
        file.tensors.removeAll { $0.name == "bn1.running_mean" }
        let report = try ReuseAnalysis(target: run, testSet: run.data.test!, targetLabel: "t")
            .analyse(sources: [ReuseSource(label: "o", path: "o", file: file)], options: .init())
        XCTAssertEqual(report.rows.count, 4)
        XCTAssertEqual(report.sources[0].skipped.count, 2)
        XCTAssertTrue(report.sources[0].skipped.contains { $0.contains("conv1.weight: shape [1, 1, 1, 1]") })
        XCTAssertEqual(ReuseReportJob.label("runs/B1/best.safetensors"), "B1")
        XCTAssertEqual(ReuseReportJob.label("runs/B1/"), "B1")
        XCTAssertEqual(ReuseReportJob.label("m/x.safetensors"), "x")
    }
}
