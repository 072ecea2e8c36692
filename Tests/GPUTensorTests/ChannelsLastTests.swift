import XCTest
import CDNNL
@testable import GPUTensor

/// The CPU backend's channels-last storage (CPULayout.swift): the memory really is NHWC / OHWI,
/// every boundary (upload, download, copy, Philox fills, dropout) speaks logical NCHW, and the
/// convolutions bind the caller's memory without reorders.
final class ChannelsLastTests: XCTestCase {
    let backend = CPUBackend(threads: 2)

    /// 0, 1, 2, ... in logical row-major order.
    private func iota(_ count: Int) -> [Float] { (0..<count).map(Float.init) }

    /// The raw memory of a CPU tensor, in storage order.
    private func memory(_ t: Tensor) -> [Float] { Array(UnsafeBufferPointer(start: t.hostPointer, count: t.count)) }

    /// Logical (N, C, H, W) values permuted into NHWC order.
    private func nhwc(_ values: [Float], _ s: [Int]) -> [Float] {
        var out = [Float](repeating: .nan, count: values.count)
        for n in 0..<s[0] { for c in 0..<s[1] { for h in 0..<s[2] { for w in 0..<s[3] {
            out[((n * s[2] + h) * s[3] + w) * s[1] + c] = values[((n * s[1] + c) * s[2] + h) * s[3] + w]
        } } } }
        return out
    }

    func testRank4IsStoredChannelsLastAndRoundTrips() throws {
        for shape in [[2, 3, 4, 5], [3, 40, 33, 35], [1, 1, 4, 4], [2, 5, 1, 1], [7, 2, 1, 3]] {
            let values = iota(shape.reduce(1, *))
            let t = try backend.tensor(values, shape: shape)
            XCTAssertEqual(memory(t), nhwc(values, shape), "storage of \(shape)")
            XCTAssertEqual(try backend.download(t), values, "round trip of \(shape)")
        }
        // Ranks 1-3 are plain row-major.
        for shape in [[24], [4, 6], [2, 3, 4]] {
            let t = try backend.tensor(iota(24), shape: shape)
            XCTAssertEqual(memory(t), iota(24), "storage of \(shape)")
        }
    }

    func testSlicesOfTheBatchAreLogicalToo() throws {
        let shape = [4, 3, 2, 5], image = 30
        let t = try backend.allocate(shape)
        backend.upload(iota(2 * image), to: t.slice(1..<3))
        let all = try backend.download(t)
        XCTAssertEqual(Array(all[image..<(3 * image)]), iota(2 * image))
        XCTAssertEqual(Array(all[0..<image]), [Float](repeating: 0, count: image))
        XCTAssertEqual(try backend.download(t.slice(1..<3)), iota(2 * image))
    }

    func testCopyIsInLogicalOrder() throws {
        let shape = [3, 4, 5, 6], count = 360
        let x = try backend.tensor(iota(count), shape: shape)
        // Rank 4 -> rank 2: PyTorch's flatten (C, H, W) order.
        let flat = try backend.allocate([3, 120])
        backend.copy(x, to: flat)
        XCTAssertEqual(memory(flat), iota(count))
        // Rank 2 -> rank 4, and rank 4 -> the same shape.
        let back = try backend.allocate(shape), same = try backend.allocate(shape)
        backend.copy(flat, to: back)
        backend.copy(x, to: same)
        XCTAssertEqual(try backend.download(back), iota(count))
        XCTAssertEqual(memory(same), memory(x))
        // Rank 4 -> another rank-4 shape of the same count.
        let other = try backend.allocate([3, 10, 2, 6])
        backend.copy(x, to: other)
        XCTAssertEqual(try backend.download(other), iota(count))
    }

    /// Element i of a Philox fill is the logical element i whatever the shape, so the CPU draws
    /// what CUDA (NCHW) draws and weight init does not depend on the storage order.
    func testRandomFillsAndDropoutIndexByLogicalPosition() throws {
        let shape = [2, 3, 5, 7], count = 210
        let flatT = try backend.allocate([count]), imageT = try backend.allocate(shape)
        backend.fillNormal(flatT, mean: 0.5, std: 2, seed: 7, counter: 3)
        backend.fillNormal(imageT, mean: 0.5, std: 2, seed: 7, counter: 3)
        XCTAssertEqual(try backend.download(imageT), try backend.download(flatT))
        backend.fillUniform(flatT, low: -1, high: 3, seed: 8, counter: 1)
        backend.fillUniform(imageT, low: -1, high: 3, seed: 8, counter: 1)
        XCTAssertEqual(try backend.download(imageT), try backend.download(flatT))

        let x = iota(count).map { $0 + 1 }
        let xf = try backend.tensor(x, shape: [count]), xi = try backend.tensor(x, shape: shape)
        let yf = try backend.allocate([count]), mf = try backend.allocate([count])
        let yi = try backend.allocate(shape), mi = try backend.allocate(shape)
        backend.dropoutForward(xf, output: yf, mask: mf, probability: 0.4, seed: 5, counter: 9)
        backend.dropoutForward(xi, output: yi, mask: mi, probability: 0.4, seed: 5, counter: 9)
        XCTAssertEqual(try backend.download(yi), try backend.download(yf))
        XCTAssertEqual(try backend.download(mi), try backend.download(mf))
        XCTAssertTrue(try backend.download(mf).contains(0), "some elements dropped")
    }

    /// Activations reach oneDNN as they are: no reorder on any activation port of a plan, the
    /// 3-channel stem included (the reorders were ~40% of the convolution time before the NHWC
    /// storage, bench/NOTES.md section 5).
    func testConvolutionsBindActivationsWithoutReorders() throws {
        for g in [ConvGeometry(batch: 2, inChannels: 8, height: 6, width: 6, outChannels: 16, kernel: 3, padding: 1),
                  ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 16, kernel: 3, padding: 1),
                  ConvGeometry(batch: 1, inChannels: 16, height: 8, width: 8, outChannels: 32, kernel: 1, stride: 2)] {
            try assertNoActivationReorders(g)
        }
    }

    /// Wide 3x3 stride-1 layers take Winograd (activations through the primitive's blocked
    /// layout), everything else the direct kernels on the caller's NHWC memory; the switch and
    /// the rule are as documented (DNNLConvolutionPlan.prefersWinograd).
    func testWideThreeByThreeLayersRunWinograd() throws {
        let wide = ConvGeometry(batch: 2, inChannels: 64, height: 6, width: 7, outChannels: 64, kernel: 3, stride: 1, padding: 1)
        XCTAssertTrue(DNNLConvolutionPlan.prefersWinograd(wide))
        for narrow in [ConvGeometry(batch: 2, inChannels: 32, height: 8, width: 8, outChannels: 64, kernel: 3, padding: 1),
                       ConvGeometry(batch: 2, inChannels: 64, height: 8, width: 8, outChannels: 64, kernel: 3, stride: 2, padding: 1),
                       ConvGeometry(batch: 2, inChannels: 512, height: 2, width: 2, outChannels: 512, kernel: 3, padding: 1),
                       ConvGeometry(batch: 2, inChannels: 72, height: 8, width: 8, outChannels: 64, kernel: 3, padding: 1),
                       ConvGeometry(batch: 2, inChannels: 64, height: 8, width: 8, outChannels: 64, kernel: 1)] {
            XCTAssertFalse(DNNLConvolutionPlan.prefersWinograd(narrow), "\(narrow)")
        }
        let plan = backend.dnnl.plan(wide, bias: true)
        guard plan.algorithm == dnnl_convolution_winograd else {
            throw XCTSkip("oneDNN has no Winograd convolution on this CPU (it needs AVX-512)")
        }
        XCTAssertNotNil(plan.src.reorder, "Winograd reads a blocked copy")
        XCTAssertNotNil(plan.backwardData.diffSrc.reorder, "both backward directions run Winograd too")
        XCTAssertNotNil(plan.backwardWeights.src.reorder)
        let saved = DNNLConvolutionPlan.winogradEnabled
        DNNLConvolutionPlan.winogradEnabled = false
        defer { DNNLConvolutionPlan.winogradEnabled = saved }
        XCTAssertFalse(DNNLConvolutionPlan.prefersWinograd(wide), "STRATA_CPU_WINOGRAD=off keeps it direct")
        let direct = CPUBackend(threads: 1).dnnl.plan(wide, bias: true)
        XCTAssertEqual(direct.algorithm, dnnl_convolution_direct)
        XCTAssertNil(direct.src.reorder)
    }

    private func assertNoActivationReorders(_ g: ConvGeometry) throws {
        let plan = backend.dnnl.plan(g, bias: true)
        XCTAssertNil(plan.src.reorder)
        XCTAssertNil(plan.dst.reorder)
        XCTAssertNil(plan.backwardData.diffDst.reorder)
        XCTAssertNil(plan.backwardData.diffSrc.reorder)
        XCTAssertNil(plan.backwardWeights.src.reorder)
        XCTAssertNil(plan.backwardWeights.diffDst.reorder)
    }

    /// Batch-norm statistics at training size, where the one-pass shifted sums meet many rows:
    /// a large mean relative to the spread (offset 100, spread 0.1) and ReLU-like data (half
    /// zeros), against float64 sums of the same float32 inputs.
    func testBatchNormStatisticsAtTrainingSize() throws {
        let shape = [64, 24, 16, 16], ch = 24, hw = 256
        for (label, transform) in [("offset 100, spread 0.1", { (u: Float) in 100 + 0.1 * u }),
                                   ("ReLU-like", { (u: Float) in max(0, u) })] {
            let t = try backend.allocate(shape)
            backend.fillNormal(t, mean: 0, std: 1, seed: 21, counter: 0)
            let x = try backend.download(t).map(transform)
            let xt = try backend.tensor(x, shape: shape), y = try backend.allocate(shape)
            let c = [ch]
            let gamma = try backend.tensor([Float](repeating: 1, count: ch), shape: c)
            let beta = try backend.allocate(c), rm = try backend.allocate(c), rv = try backend.allocate(c)
            let sm = try backend.allocate(c), si = try backend.allocate(c)
            backend.batchNormForwardTraining(input: xt, output: y, gamma: gamma, beta: beta, runningMean: rm,
                                             runningVar: rv, saveMean: sm, saveInvStd: si, momentum: 1, epsilon: 1e-5)
            let mean = try backend.download(sm), invStd = try backend.download(si), running = try backend.download(rv)
            let m = Double(shape[0] * hw)
            for k in 0..<ch {
                var s = 0.0
                for n in 0..<shape[0] { for p in 0..<hw { s += Double(x[(n * ch + k) * hw + p]) } }
                let mu = s / m
                var q = 0.0
                for n in 0..<shape[0] { for p in 0..<hw { let d = Double(x[(n * ch + k) * hw + p]) - mu; q += d * d } }
                XCTAssertEqual(Double(mean[k]), mu, accuracy: 1e-6 * max(1, abs(mu)), "\(label): mean of channel \(k)")
                let inv = 1 / (q / m + 1e-5).squareRoot()
                XCTAssertEqual(Double(invStd[k]), inv, accuracy: 1e-5 * inv, "\(label): invStd of channel \(k)")
                XCTAssertEqual(Double(running[k]), q / (m - 1), accuracy: 1e-5 * q / (m - 1), "\(label): running var \(k)")
            }
        }
    }
}
