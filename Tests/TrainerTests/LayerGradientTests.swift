import XCTest
import GPUTensor
@testable import Trainer

/// Hand-written backward of each layer against central finite differences, through the real
/// CPU backend.
///
/// Loss: `L = sum(y * R)` for a fixed random R (so dL/dy = R), accumulated in Double from the
/// float32 forward. An analytic value `a` passes against a central difference `f` when
/// `|a - f| <= atol + rtol * |f|`; defaults atol 2e-3, rtol 1e-2 (the float32 rounding of L,
/// ~1e-6 relative over a few hundred terms, divided by 2h = 2e-2 is ~1e-4).
///
/// ReLU kinks: a perturbation that moves some ReLU input across 0 makes the central difference
/// wrong by up to that element's share of the gradient. Inputs of the max-pool and ReLU tests keep
/// every value at least 0.05 from a kink or a tie; for blocks with batch norm inside (where the
/// kinks are not under control) an entry passes if it matches the central or a one-sided
/// difference at any of the steps tried (1e-2, 1e-3, 1e-4): a wrong backward misses them all,
/// a kink spoils only the differences that straddle it.
/// Probing a tiny ResNet showed the analytic values equal to the 1e-4 difference within 2e-4
/// while the 1e-3 difference was off by up to half on the same entries.
final class LayerGradientTests: XCTestCase {
    let backend = CPUBackend(threads: 2)

    // MARK: Convolution and dense

    func testConv2DStridedPaddedWithBias() throws {
        let conv = Conv2D(name: "conv", inChannels: 3, outChannels: 4, kernel: 3, stride: 2, padding: 1, bias: true)
        try checkLayer(conv, input: [3, 7, 7], batch: 2)
    }

    /// Even input, stride 2: the last padded row and column are outside every window.
    func testConv2DStridedEvenInput() throws {
        let conv = Conv2D(name: "conv", inChannels: 2, outChannels: 3, kernel: 3, stride: 2, padding: 1, bias: false)
        try checkLayer(conv, input: [2, 6, 6], batch: 2)
    }

    func testConv2D1x1NoBias() throws {
        let conv = Conv2D(name: "proj", inChannels: 4, outChannels: 6, kernel: 1, stride: 2, bias: false)
        try checkLayer(conv, input: [4, 6, 6], batch: 2)
    }

    func testConv2DRectangularInput() throws {
        let conv = Conv2D(name: "conv", inChannels: 2, outChannels: 3, kernel: 3, padding: 0)
        try checkLayer(conv, input: [2, 5, 8], batch: 3)
    }

    func testDense() throws {
        try checkLayer(Dense(name: "fc", inFeatures: 7, outFeatures: 5), input: [7], batch: 4)
        try checkLayer(Dense(name: "fc", inFeatures: 3, outFeatures: 2, bias: false), input: [3], batch: 1)
    }

    func testFlattenDense() throws {
        let seq = Sequential([Flatten(), Dense(name: "fc", inFeatures: 2 * 3 * 3, outFeatures: 4)])
        try checkLayer(seq, input: [2, 3, 3], batch: 2)
    }

    // MARK: Normalisation

    func testBatchNorm2DTraining() throws {
        try checkLayer(BatchNorm2D(name: "bn", channels: 3), input: [3, 4, 4], batch: 2)
    }

    func testBatchNorm1DAfterDense() throws {
        try checkLayer(BatchNorm2D(name: "bn", channels: 5), input: [5], batch: 6)
    }

    /// A frozen BN runs in inference mode even in a training forward: dx is the per-channel scale,
    /// and gamma/beta get no gradient.
    func testFrozenBatchNormIsAffine() throws {
        let bn = BatchNorm2D(name: "bn", channels: 3)
        bn.setFrozen(true)
        try checkLayer(bn, input: [3, 3, 3], batch: 2, expectParameterGradients: false)
    }

    // MARK: Activations and pooling

    func testReLUInPlaceAndNot() throws {
        for inPlace in [true, false] {
            try checkLayer(ReLU(inPlace: inPlace), input: [2, 3, 3], batch: 2, inputValues: kinkFreeValues)
        }
    }

    func testMaxPool() throws {
        try checkLayer(MaxPool2D(window: 2), input: [2, 5, 5], batch: 2, inputValues: kinkFreeValues)
        try checkLayer(MaxPool2D(window: 3, stride: 2, padding: 1), input: [2, 5, 5], batch: 2, inputValues: kinkFreeValues)
        try checkLayer(MaxPool2D(window: 2, padding: 1), input: [1, 7, 7], batch: 2, inputValues: kinkFreeValues)
    }

    /// The window positions are the layer's: a batch smaller than the prepared one uses the
    /// front of its workspace, and a backward after an inference forward (which saves no
    /// positions; Synflow runs that way) saves them first. Both equal a plain training step's dx.
    func testMaxPoolWorkspaceSmallerBatchAndInferenceForward() throws {
        for (window, stride, padding) in [(2, 2, 0), (3, 2, 1)] {
            let shape = [3, 7, 7], n = 2
            let reference = MaxPool2D(window: window, stride: stride, padding: padding)
            try reference.prepare(input: shape, maxBatch: n, backend: backend)
            let x = try backend.tensor(kinkFreeValues(n * shape.reduce(1, *)), shape: [n] + shape)
            let outShape = [n] + reference.outputShape(input: shape)
            let dy = try backend.tensor(randomValues(outShape.reduce(1, *), seed: 5), shape: outShape)
            _ = reference.forward(x, mode: .training)
            let expected = try backend.download(reference.backward(dy, computeInputGradient: true)!)
            XCTAssertTrue(expected.contains { $0 != 0 })

            let wide = MaxPool2D(window: window, stride: stride, padding: padding)
            try wide.prepare(input: shape, maxBatch: 5, backend: backend)
            _ = wide.forward(x, mode: .training)
            XCTAssertEqual(try backend.download(wide.backward(dy, computeInputGradient: true)!), expected,
                           "smaller batch, \(window)/\(stride) pad \(padding)")

            let scored = MaxPool2D(window: window, stride: stride, padding: padding)
            try scored.prepare(input: shape, maxBatch: n, backend: backend)
            _ = scored.forward(x, mode: .training)   // positions of another input, then overwritten
            let other = try backend.tensor(randomValues(x.count, seed: 9), shape: x.shape)
            _ = scored.forward(other, mode: .training)
            let y = try backend.download(scored.forward(x, mode: .inference))
            XCTAssertEqual(try backend.download(scored.backward(dy, computeInputGradient: true)!), expected,
                           "backward after an inference forward, \(window)/\(stride) pad \(padding)")
            XCTAssertEqual(try backend.download(scored.forward(x, mode: .inference)), y)
        }
    }

    func testAvgPool() throws {
        try checkLayer(AvgPool2D(window: 2), input: [2, 4, 4], batch: 2)
        try checkLayer(AvgPool2D(window: 3, stride: 2, padding: 1), input: [2, 5, 5], batch: 2)
    }

    func testGlobalAvgPool() throws {
        try checkLayer(GlobalAvgPool(), input: [3, 4, 5], batch: 2)
    }

    func testDropout() throws {
        let d = Dropout(name: "drop", probability: 0.4)
        d.seed = 7
        // Each training forward advances the counter; replay the same mask for every FD evaluation.
        try checkLayer(d, input: [4, 3], batch: 3, beforeForward: { d.counter = 5 })
        XCTAssertEqual(d.counter, 6)
    }

    // MARK: Residual blocks

    func testBasicBlockIdentity() throws {
        try checkLayer(BasicBlock(name: "b", inPlanes: 3, planes: 3, shortcut: .a), input: [3, 4, 4], batch: 2,
                       steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2))
    }

    func testBasicBlockOptionA() throws {
        try checkLayer(BasicBlock(name: "b", inPlanes: 2, planes: 4, stride: 2, shortcut: .a), input: [2, 6, 6], batch: 2,
                       steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2))
    }

    func testBasicBlockOptionB() throws {
        try checkLayer(BasicBlock(name: "b", inPlanes: 2, planes: 4, stride: 2, shortcut: .b), input: [2, 5, 5], batch: 2,
                       steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2))
    }

    /// A pruned proxy's block: conv1 narrower than the block (midPlanes), option A shortcut.
    func testBasicBlockNarrowInnerWidth() throws {
        try checkLayer(BasicBlock(name: "b", inPlanes: 2, planes: 4, midPlanes: 1, stride: 2, shortcut: .a), input: [2, 6, 6],
                       batch: 2, steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2))
        try checkLayer(BasicBlock(name: "b", inPlanes: 3, planes: 3, midPlanes: 2, shortcut: .b), input: [3, 4, 4],
                       batch: 2, steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2))
    }

    /// A `--tied prune` proxy's stage transitions: option A with a stride but no new channels
    /// (offset 0), and with an odd width padded by one channel on each side.
    func testBasicBlockOptionAPrunedStageWidths() throws {
        try checkLayer(BasicBlock(name: "b", inPlanes: 3, planes: 3, midPlanes: 2, stride: 2, shortcut: .a), input: [3, 6, 6],
                       batch: 2, steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2))
        try checkLayer(BasicBlock(name: "b", inPlanes: 3, planes: 5, stride: 2, shortcut: .a), input: [3, 5, 5],
                       batch: 2, steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2))
    }

    /// A frozen block passes gradients through (BN as a fixed affine map) and writes no weight gradient.
    func testFrozenBasicBlockPassesInputGradient() throws {
        let block = BasicBlock(name: "b", inPlanes: 2, planes: 4, stride: 2, shortcut: .b)
        block.setFrozen(true)
        try checkLayer(block, input: [2, 5, 5], batch: 2, steps: [1e-2, 1e-3, 1e-4], tolerance: (3e-3, 2e-2),
                       expectParameterGradients: false)
    }

    // MARK: Batch capacity

    /// A batch smaller than the prepared maximum works on views and gives the same per-image results.
    func testSmallerBatchUsesPreparedBuffers() throws {
        let conv = Conv2D(name: "c", inChannels: 2, outChannels: 3, kernel: 3, padding: 1)
        try conv.prepare(input: [2, 4, 4], maxBatch: 4, backend: backend)
        backend.upload(randomValues(conv.weight.count, seed: 1), to: conv.weight.value)
        let x = try backend.tensor(randomValues(4 * 32, seed: 2), shape: [4, 2, 4, 4])
        let full = try backend.download(conv.forward(x, mode: .inference))
        let y = conv.forward(x.slice(0..<2), mode: .inference)
        XCTAssertEqual(y.shape, [2, 3, 4, 4])
        XCTAssertEqual(try backend.download(y), Array(full.prefix(2 * 48)))
    }

    // MARK: Harness

    /// Values spaced 0.1 apart in a random order, offset away from 0: no ties within a pooling
    /// window, nothing within 0.05 of the ReLU kink.
    private func kinkFreeValues(_ count: Int) -> [Float] {
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(Philox.bits(seed: 99, counter: 0, index: i) % UInt32(i + 1))
            order.swapAt(i, j)
        }
        return order.map { Float($0 - count / 2) * 0.1 + 0.05 }
    }

    /// Checks dx and every parameter gradient of `layer` against central differences of
    /// `L = sum(y * R)`, sampling `samples` entries per tensor. Parameters and BN running stats
    /// get random values first (gamma away from 0, running_var positive).
    func checkLayer(_ layer: any Layer, input perImage: [Int], batch n: Int, mode: ForwardMode = .training,
                    inputValues: ((Int) -> [Float])? = nil, steps: [Float] = [1e-2],
                    tolerance: (atol: Double, rtol: Double) = (2e-3, 1e-2), samples: Int = 8,
                    expectParameterGradients: Bool = true, beforeForward: () -> Void = {},
                    file: StaticString = #filePath, line: UInt = #line) throws {
        let label = layer.name.isEmpty ? "\(type(of: layer))" : "\(type(of: layer)) \(layer.name)"
        try layer.prepare(input: perImage, maxBatch: n, backend: backend)
        for (k, p) in layer.parameters.enumerated() {
            var v = randomValues(p.count, seed: 100 + UInt64(k), std: 0.5)
            if isGamma(p, in: layer) {
                v = v.map { 1 + 0.3 * $0 }
            }
            backend.upload(v, to: p.value)
            backend.fill(p.grad, value: 12345)   // sentinel: frozen parameters must keep it
        }
        for (k, b) in layer.buffers.enumerated() {
            let v = randomValues(b.count, seed: 200 + UInt64(k), std: 0.3)
            backend.upload(b.name.hasSuffix("running_var") ? v.map { 0.5 + abs($0) } : v, to: b.value)
        }
        let outShape = layer.outputShape(input: perImage)
        let xCount = n * perImage.reduce(1, *)
        var xHost = inputValues?(xCount) ?? randomValues(xCount, seed: 1)
        let r = randomValues(n * outShape.reduce(1, *), seed: 2)
        let x = try backend.allocate([n] + perImage)
        let dy = try backend.allocate([n] + outShape)

        func loss() throws -> Double {
            backend.upload(xHost, to: x)
            beforeForward()
            let y = try backend.download(layer.forward(x, mode: mode))
            XCTAssertEqual(y.count, r.count, "\(label): output size", file: file, line: line)
            var s = 0.0
            for i in y.indices { s += Double(y[i]) * Double(r[i]) }
            return s
        }

        _ = try loss()
        backend.upload(r, to: dy)
        guard let dxTensor = layer.backward(dy, computeInputGradient: true) else {
            return XCTFail("\(label): no input gradient", file: file, line: line)
        }
        XCTAssertEqual(dxTensor.shape, [n] + perImage, "\(label): dx shape", file: file, line: line)
        let dx = try backend.download(dxTensor)
        let grads = try layer.parameters.map { try backend.download($0.grad) }

        /// Central differences at each step until one matches; `perturb(d)` sets the entry to its value + d.
        func check(_ what: String, _ index: Int, analytic a: Float, perturb: (Float) -> Void) throws {
            var tried: [String] = []
            let base = try loss()
            for h in steps {
                perturb(h)
                let plus = try loss()
                perturb(-h)
                let minus = try loss()
                perturb(0)
                // Central first; with several steps also the one-sided differences (a kink near
                // the entry lies on one side, the other side is smooth).
                var differences = [(plus - minus) / (2 * Double(h))]
                if steps.count > 1 { differences += [(plus - base) / Double(h), (base - minus) / Double(h)] }
                if differences.contains(where: { abs(Double(a) - $0) <= tolerance.atol + tolerance.rtol * abs($0) }) { return }
                tried.append("h \(h): \(differences)")
            }
            XCTFail("\(label) \(what)[\(index)]: analytic \(a), numeric \(tried.joined(separator: "; "))",
                    file: file, line: line)
        }

        for i in sampleIndices(xCount, samples) {
            let saved = xHost[i]
            try check("dx", i, analytic: dx[i]) { xHost[i] = saved + $0 }
        }

        for (k, p) in layer.parameters.enumerated() {
            if !expectParameterGradients || p.isFrozen {
                XCTAssertTrue(grads[k].allSatisfy { $0 == 12345 }, "\(label) \(p.name): frozen gradient was written",
                              file: file, line: line)
                continue
            }
            var values = try backend.download(p.value)
            for i in sampleIndices(p.count, samples) {
                let saved = values[i]
                try check(p.name, i, analytic: grads[k][i]) { d in
                    values[i] = saved + d
                    backend.upload(values, to: p.value)
                }
            }
        }
    }

    private func isGamma(_ p: Parameter, in layer: any Layer) -> Bool {
        var found = false
        func walk(_ l: any Layer) {
            if let bn = l as? BatchNorm2D, bn.gamma === p { found = true }
            l.children.forEach(walk)
        }
        walk(layer)
        return found
    }
}

/// Deterministic normal values from Philox.
func randomValues(_ count: Int, seed: UInt64, std: Float = 1) -> [Float] {
    (0..<count).map { std * Philox.normal(seed: seed, counter: 0, index: $0) }
}

/// Up to `samples` distinct indices spread over `0..<count`, first and last included.
func sampleIndices(_ count: Int, _ samples: Int) -> [Int] {
    if count <= samples { return Array(0..<count) }
    return Array(Set((0..<samples).map { $0 * (count - 1) / (samples - 1) })).sorted()
}
