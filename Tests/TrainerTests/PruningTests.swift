import GPUTensor
@testable import Trainer
import XCTest
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

final class PruningTests: XCTestCase {
    // MARK: Synflow against float64

    /// A float64 reference of the cnn family (same padding, conv -> ReLU -> 2x2 max-pool, then
    /// dense -> ReLU, dense), R = sum of the logits.
    struct Reference {
        var convs: [(w: [Double], b: [Double], cin: Int, cout: Int)]
        var dense: [(w: [Double], b: [Double], nin: Int, nout: Int)]
        var input: (c: Int, h: Int, w: Int)
        let k = 3

        func R() -> Double {
            var (c, h, w) = input
            var x = [Double](repeating: 1, count: c * h * w)
            for conv in convs {
                var y = [Double](repeating: 0, count: conv.cout * h * w)
                for o in 0..<conv.cout { for i in 0..<h { for j in 0..<w {
                    var s = conv.b[o]
                    for ci in 0..<conv.cin { for di in 0..<k { for dj in 0..<k {
                        let ii = i + di - 1, jj = j + dj - 1
                        guard ii >= 0 && ii < h && jj >= 0 && jj < w else { continue }
                        s += conv.w[((o * conv.cin + ci) * k + di) * k + dj] * x[(ci * h + ii) * w + jj]
                    } } }
                    y[(o * h + i) * w + j] = max(0, s)
                } } }
                let (ph, pw) = (h / 2, w / 2)
                var p = [Double](repeating: 0, count: conv.cout * ph * pw)
                for o in 0..<conv.cout { for i in 0..<ph { for j in 0..<pw {
                    p[(o * ph + i) * pw + j] = [y[(o * h + 2 * i) * w + 2 * j], y[(o * h + 2 * i) * w + 2 * j + 1],
                                                y[(o * h + 2 * i + 1) * w + 2 * j], y[(o * h + 2 * i + 1) * w + 2 * j + 1]].max()!
                } } }
                (c, h, w) = (conv.cout, ph, pw)
                x = p
            }
            for (l, d) in dense.enumerated() {
                x = (0..<d.nout).map { o in
                    let s = d.b[o] + (0..<d.nin).reduce(0.0) { $0 + d.w[o * d.nin + $1] * x[$1] }
                    return l == dense.count - 1 ? s : max(0, s)
                }
            }
            return x.reduce(0, +)
        }
    }

    func testSynflowScoresMatchAFloat64Computation() throws {
        let spec = ModelSpec.cnn(CNNOptions(filters: [2, 3], kernel: 3, hidden: [4]),
                                 input: ImageShape(channels: 1, height: 6, width: 6), classes: 3)
        let backend = CPUBackend()
        let model = try Model(spec: spec)
        let scores = try Synflow.channelScores(of: model, seed: 7, backend: backend)
        // The same model's absolute initial values, in float64.
        let values = try Dictionary(uniqueKeysWithValues: model.stateDict.map { ($0.name, try backend.download($0.tensor).map { Double($0) }) })
        var ref = Reference(convs: [(values["features.0.weight"]!, values["features.0.bias"]!, 1, 2),
                                    (values["features.3.weight"]!, values["features.3.bias"]!, 2, 3)],
                            dense: [(values["classifier.0.weight"]!, values["classifier.0.bias"]!, 3, 4),
                                    (values["classifier.3.weight"]!, values["classifier.3.bias"]!, 4, 3)],
                            input: (1, 6, 6))
        XCTAssertTrue(values.values.allSatisfy { $0.allSatisfy { $0 >= 0 } }, "synflow works on absolute values")
        // R is linear in each single weight (every path crosses a layer once): a central
        // difference gives dR/dtheta exactly, up to rounding.
        var expected: [[Double]] = []
        for l in 0..<2 {
            let conv = ref.convs[l], per = conv.cin * 9
            var channel = [Double](repeating: 0, count: conv.cout)
            for i in 0..<conv.w.count {
                let theta = conv.w[i], h = 1e-4 * max(theta, 1e-3)
                ref.convs[l].w[i] = theta + h; let up = ref.R()
                ref.convs[l].w[i] = theta - h; let down = ref.R()
                ref.convs[l].w[i] = theta
                channel[i / per] += abs(theta * (up - down) / (2 * h))
            }
            expected.append(channel)
        }
        XCTAssertEqual(scores.map(\.layer), ["features.0", "features.3"])
        // Ours are scaled by the renormalisation constant: compare shares of the total.
        let ours = scores.flatMap(\.scores), theirs = expected.flatMap { $0 }
        let so = ours.reduce(0, +), st = theirs.reduce(0, +)
        XCTAssertGreaterThan(st, 0)
        for i in ours.indices {
            XCTAssertEqual(ours[i] / so, theirs[i] / st, accuracy: 1e-4 * max(theirs[i] / st, 1e-3), "channel \(i)")
        }
    }

    /// Rescaling between blocks multiplies every score by one constant: the shares are those of
    /// the unscaled computation (checked on a ResNet small enough not to overflow either way).
    func testRenormalisationKeepsTheScoresProportional() throws {
        let spec = ModelSpec(family: .resnet, input: ImageShape(channels: 3, height: 8, width: 8), classes: 4,
                             resnet: ResNetOptions(depth: 8, shortcut: .a, width: 4))
        let a = try Synflow.channelScores(of: try Model(spec: spec), seed: 3, backend: CPUBackend(), renormalize: true)
        let b = try Synflow.channelScores(of: try Model(spec: spec), seed: 3, backend: CPUBackend(), renormalize: false)
        let x = a.flatMap(\.scores), y = b.flatMap(\.scores)
        let sx = x.reduce(0, +), sy = y.reduce(0, +)
        XCTAssertNotEqual(sx, sy, accuracy: 1e-6 * sy, "the rescaling did change the raw scale")
        for i in x.indices { XCTAssertEqual(x[i] / sx, y[i] / sy, accuracy: 1e-5, "channel \(i)") }
    }

    // MARK: The plan

    func testPlanRemovesBelowThePercentileAndKeepsTheMinimum() throws {
        let scores = [Synflow.LayerScores(layer: "a", scores: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
                      Synflow.LayerScores(layer: "b", scores: [100, 200, 0.5, 300])]
        let plan = try ChannelPlan(scores: scores, percentile: 50, minRatio: 0.15)
        // 14 scores; the 50th percentile interpolates between the 7th and 8th: 6.5.
        XCTAssertEqual(plan.threshold, 6.5, accuracy: 1e-12)
        XCTAssertEqual(plan.layers[0].kept, [6, 7, 8, 9])
        XCTAssertEqual(plan.layers[1].kept, [0, 1, 3])
        let strict = try ChannelPlan(scores: scores, percentile: 100, minRatio: 0.15)
        XCTAssertEqual(strict.layers.map(\.channelsAfter), [2, 1], "ceil(0.15 x 10) = 2, ceil(0.15 x 4) = 1")
        XCTAssertEqual(strict.layers[0].kept, [8, 9], "the best-scoring channels make the minimum")
        XCTAssertThrowsError(try ChannelPlan(scores: scores, percentile: 101, minRatio: 0.15))
        XCTAssertThrowsError(try ChannelPlan(scores: scores, percentile: 85, minRatio: 0))
        XCTAssertEqual(ChannelPlan.percentile([3, 1, 2], 0), 1)
        XCTAssertEqual(ChannelPlan.percentile([3, 1, 2], 100), 3)
    }

    /// `strata prune` on the four families at p=85, m=0.15.
    func testPruneKeepsAtLeastTheMinimumOfEveryLayerAndShrinksTheModel() throws {
        let specs: [(String, ModelSpec)] = [
            ("resnet20", try ModelZoo.spec("resnet20")), ("resnet56", try ModelZoo.spec("resnet56")),
            ("vgg16", try ModelZoo.spec("vgg16")),
            ("cnn", .cnn(CNNOptions(filters: [32, 64, 128], hidden: [128]))),
        ]
        for (name, spec) in specs {
            let report = try Pruning.prune(spec, seed: 0, percentile: 85, minRatio: 0.15, backend: CPUBackend())
            for l in report.plan.layers {
                XCTAssertGreaterThanOrEqual(Double(l.channelsAfter), 0.15 * Double(l.channelsBefore), "\(name) \(l.name)")
                XCTAssertEqual(l.kept.count, l.channelsAfter)
            }
            XCTAssertLessThan(report.paramsAfter, report.paramsBefore, name)
            XCTAssertLessThan(report.flopsAfter, report.flopsBefore, name)
            // The proxy is a real model of its own: its counts are the report's.
            let proxy = try Model(spec: report.spec)
            XCTAssertEqual(proxy.parameterCount, report.paramsAfter, name)
            XCTAssertEqual(proxy.cost.forward, report.flopsAfter, name)
            XCTAssertEqual(try JSONDecoder().decode(ModelSpec.self, from: JSONEncoder().encode(report.spec)), report.spec)
            XCTAssertEqual(try JSONDecoder().decode(PruneReport.self, from: JSONEncoder().encode(report)), report)
        }
        // ResNet: the blocks' output widths (tied by the shortcuts) are kept; only conv1 narrows.
        let r = try Pruning.prune(try ModelZoo.spec("resnet20"), seed: 0, percentile: 85, minRatio: 0.15, backend: CPUBackend())
        XCTAssertEqual(r.plan.layers.count, 9)
        XCTAssertTrue(r.plan.layers.allSatisfy { $0.name.hasSuffix(".conv1") && $0.name.hasPrefix("layer") })
        let proxy = try Model(spec: r.spec)
        let blocks = proxy.blocks.compactMap { $0 as? BasicBlock }
        XCTAssertEqual(blocks.map(\.planes), [16, 16, 16, 32, 32, 32, 64, 64, 64])
        XCTAssertEqual(blocks.map(\.midPlanes), r.plan.layers.map(\.channelsAfter))
    }

    func testTiedLayersArePrunedAsOneAndAdjustOnlyRaises() throws {
        let scores = [Synflow.LayerScores(layer: "a", scores: [1, 2, 3, 4]),
                      Synflow.LayerScores(layer: "c", scores: [10, 0]),
                      Synflow.LayerScores(layer: "b", scores: [1, 0, 5, 6])]
        // a and b tied: channel scores are the means [1, 1, 4, 5]; with c's, [0, 1, 1, 4, 5, 10]:
        // the 50th percentile is 2.5.
        let plan = try ChannelPlan(scores: scores, tied: [["a", "b"]], percentile: 50, minRatio: 0.15)
        XCTAssertEqual(plan.threshold, 2.5, accuracy: 1e-12)
        XCTAssertEqual(plan.layers.map(\.name), ["a", "c", "b"], "the layers stay in forward order")
        XCTAssertEqual(plan.layers.map(\.kept), [[2, 3], [0], [2, 3]])
        // adjust raises the tied group to 3: the best of the dropped (a tie: the lower index) joins.
        let raised = try ChannelPlan(scores: scores, tied: [["a", "b"]], percentile: 50, minRatio: 0.15, adjust: { $0.map { $0 + 1 } })
        XCTAssertEqual(raised.layers.map(\.kept), [[0, 2, 3], [0], [0, 2, 3]])
        XCTAssertThrowsError(try ChannelPlan(scores: scores, tied: [["a", "b"]], percentile: 50, minRatio: 0.15, adjust: { $0.map { $0 - 1 } }))
        XCTAssertThrowsError(try ChannelPlan(scores: scores, tied: [["a", "c"]], percentile: 50, minRatio: 0.15)) {
            XCTAssertTrue("\($0)".contains("not convolutions of one width"), "\($0)")
        }
        XCTAssertEqual(Pruning.optionAWidths([16, 5, 10]), [16, 16, 16])
        XCTAssertEqual(Pruning.optionAWidths([3, 4, 64]), [4, 4, 64])
        XCTAssertEqual(Pruning.optionAWidths([6, 9, 7]), [6, 10, 10])
    }

    /// `--tied prune`: each stage's shortcut-tied channels (the stem with stage 1, every block's
    /// conv2, an option B projection) are pruned together, and the proxy's stages really narrow.
    func testTiedPruningNarrowsTheStagesOfAResNet() throws {
        for shortcut in [ResidualShortcut.a, .b] {
            var spec = try ModelZoo.spec("resnet20")
            spec.resnet!.shortcut = shortcut
            let kept = try Pruning.prune(spec, seed: 0, percentile: 85, minRatio: 0.15, backend: CPUBackend())
            let r = try Pruning.prune(spec, seed: 0, percentile: 85, minRatio: 0.15, tied: .prune, backend: CPUBackend())
            let stages = try XCTUnwrap(r.spec.resnet?.stageWidths)
            for l in r.plan.layers {
                XCTAssertGreaterThanOrEqual(Double(l.channelsAfter), 0.15 * Double(l.channelsBefore), "\(shortcut) \(l.name)")
            }
            // Every tied convolution of a stage keeps the same channels, and the spec says its width.
            for (s, group) in Pruning.tiedGroups(of: try Model(spec: spec)).enumerated() {
                let layers = r.plan.layers.filter { group.contains($0.name) }
                XCTAssertEqual(layers.count, s == 0 ? 4 : (shortcut == .b ? 4 : 3), "\(group)")
                XCTAssertEqual(Set(layers.map(\.kept)).count, 1, "\(group)")
                XCTAssertEqual(layers[0].channelsAfter, stages[s])
            }
            XCTAssertTrue(r.plan.layers.contains { $0.name == "layer2.0.downsample.0" } == (shortcut == .b))
            if shortcut == .a {
                XCTAssertTrue(zip(stages, stages.dropFirst()).allSatisfy { $1 >= $0 && ($1 - $0) % 2 == 0 }, "\(stages)")
            }
            XCTAssertLessThan(stages[2], 64, "stage 3 narrows")
            XCTAssertLessThan(r.flopsAfter, kept.flopsAfter)
            XCTAssertLessThan(r.paramsAfter, kept.paramsAfter)
            let proxy = try Model(spec: r.spec)
            XCTAssertEqual(proxy.parameterCount, r.paramsAfter)
            XCTAssertEqual(proxy.blocks.compactMap { ($0 as? BasicBlock)?.planes },
                           [0, 0, 0, 1, 1, 1, 2, 2, 2].map { stages[$0] })
            XCTAssertEqual(try JSONDecoder().decode(ModelSpec.self, from: JSONEncoder().encode(r.spec)), r.spec)
            // The lr transfer follows: the fc's fan-in is stage 3's width.
            let scales = try LearningRateTransfer.scaled.scales(full: spec, proxy: r.spec, optimizer: .adam)
            XCTAssertEqual(Double(try XCTUnwrap(scales["fc.weight"])), (64 / Double(stages[2])).squareRoot(), accuracy: 1e-6)
        }
        // A spec whose option A stages fall, or miss one, is refused with the field's name.
        var bad = try ModelZoo.spec("resnet20")
        bad.resnet!.stageWidths = [16, 8, 32]
        XCTAssertThrowsError(try Model(spec: bad)) { XCTAssertTrue("\($0)".contains("stageWidths"), "\($0)") }
        bad.resnet!.stageWidths = [16, 32]
        XCTAssertThrowsError(try Model(spec: bad)) { XCTAssertTrue("\($0)".contains("3 positive widths"), "\($0)") }
    }

    func testASpecWithoutBlockWidthsDecodesAsBefore() throws {
        let json = #"{"depth":20,"shortcut":"A","width":16}"#
        let o = try JSONDecoder().decode(ResNetOptions.self, from: Data(json.utf8))
        XCTAssertNil(o.blockWidths)
        XCTAssertNil(o.stageWidths)
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(o), as: UTF8.self).contains("Widths"),
                       "unpruned specs (and so checkpoints) are written as before")
        var bad = try ModelZoo.spec("resnet20")
        bad.resnet?.blockWidths = [1, 2]
        XCTAssertThrowsError(try Model(spec: bad)) { XCTAssertTrue("\($0)".contains("9 positive inner widths")) }
    }

    /// The proxy's lr transfer: each weight whose fan-in the pruning narrowed trains at
    /// sqrt(full fan-in / proxy fan-in) x the lr; nothing else is scaled; SGD and lr=same get none.
    func testLearningRateTransferFollowsTheFanInOfNarrowedWeightsOnly() throws {
        let full = ModelSpec.cnn(CNNOptions(filters: [32, 64, 128], hidden: [128]))
        var proxy = full
        proxy.cnn!.filters = [32, 10, 20]
        let scales = try LearningRateTransfer.scaled.scales(full: full, proxy: proxy, optimizer: .adam)
        let model = try Model(spec: proxy), fullModel = try Model(spec: full)
        let convs = Synflow.convolutions(of: model).map(\.name)
        let dense = model.parameters.filter { $0.shape.count == 2 }.map(\.name)
        XCTAssertEqual(convs.count, 3)
        XCTAssertEqual(dense.count, 2)
        // conv0 (3 input channels) and conv1 (all 32 of conv0's kept) keep their fan-in.
        XCTAssertNil(scales[convs[0] + ".weight"])
        XCTAssertNil(scales[convs[1] + ".weight"])
        XCTAssertEqual(Double(try XCTUnwrap(scales[convs[2] + ".weight"])), (64.0 / 10).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(Double(try XCTUnwrap(scales[dense[0]])), (128.0 / 20).squareRoot(), accuracy: 1e-6, "flatten: channels x pixels")
        XCTAssertNil(scales[dense[1]], "the hidden layer was not pruned")
        XCTAssertEqual(Set(scales.keys), [convs[2] + ".weight", dense[0]], "no bias or batch-norm parameter is scaled")
        XCTAssertTrue(fullModel.parameters.contains { $0.name == dense[0] })
        XCTAssertEqual(try LearningRateTransfer.scaled.scales(full: full, proxy: proxy, optimizer: .sgd), [:])
        XCTAssertEqual(try LearningRateTransfer.same.scales(full: full, proxy: proxy, optimizer: .adam), [:])
        // ResNet: conv1 narrows its block's conv2 input; the stem, conv1 and the shortcuts keep theirs.
        let r = try Pruning.prune(try ModelZoo.spec("resnet20"), seed: 0, percentile: 85, minRatio: 0.15, backend: CPUBackend())
        let rs = try LearningRateTransfer.scaled.scales(full: try ModelZoo.spec("resnet20"), proxy: r.spec, optimizer: .adamw)
        XCTAssertFalse(rs.isEmpty)
        XCTAssertTrue(rs.keys.allSatisfy { $0.hasSuffix(".conv2.weight") }, "\(rs.keys.sorted())")
        for l in r.plan.layers where l.channelsAfter < l.channelsBefore {
            let name = l.name.replacingOccurrences(of: ".conv1", with: ".conv2.weight")
            XCTAssertEqual(Double(try XCTUnwrap(rs[name], name)), (Double(l.channelsBefore) / Double(l.channelsAfter)).squareRoot(), accuracy: 1e-6)
        }
    }
}
