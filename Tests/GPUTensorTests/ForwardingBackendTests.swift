import XCTest
@testable import GPUTensor

/// `ForwardingBackend` calls each requirement of its base once, under that requirement's own
/// `BackendKernel` (a copy-paste slip in the 47 forwarders would mislabel a profiler row or a
/// recorded call), and every `BackendKernel` case is some requirement's.
final class ForwardingBackendTests: XCTestCase {
    private final class Tagging: ForwardingBackend {
        var tags: [BackendKernel] = []
        override func around<R>(_ call: BackendCall, _ body: () throws -> R) rethrows -> R {
            tags.append(call.kernel)
            return try body()
        }
    }

    func testEveryRequirementIsForwardedUnderItsOwnName() throws {
        let b = Tagging(wrapping: CPUBackend())
        var seen: [BackendKernel] = []
        func expect(_ kernel: BackendKernel, _ call: () throws -> Void, line: UInt = #line) rethrows {
            b.tags = []
            try call()
            XCTAssertEqual(b.tags, [kernel], "\(kernel)", line: line)
            seen.append(kernel)
        }
        // Tensors come from the base, so that making them is not tagged.
        func make(_ shape: [Int], _ value: Float = 0.5) throws -> Tensor {
            let t = try b.base.allocate(shape)
            b.base.fill(t, value: value)
            return t
        }
        let x = try make([2, 4, 4, 4]), y = try make([2, 4, 4, 4]), dx = try make([2, 4, 4, 4]), mask = try make([2, 4, 4, 4])
        let perChannel = try (0..<8).map { _ in try make([4], 1) }
        let logits = try b.base.tensor([1, 2, 3, 3, 2, 1] as [Float], shape: [2, 3]), labels = try b.base.tensor([2, 1] as [Float], shape: [2])
        let rows = try make([2]), slots = try make([3])

        var made: Tensor?
        try expect(.allocate) { made = try b.allocate([2, 4, 4, 4]) }
        XCTAssertEqual(made?.shape, [2, 4, 4, 4])
        try expect(.upload) { b.upload([Float](repeating: 1, count: x.count), to: x) }
        try expect(.download) { _ = try b.download(x) }
        try expect(.copy) { b.copy(x, to: y) }
        try expect(.synchronize) { try b.synchronize() }

        let ga = try make([2, 4]), gb = try make([4, 3]), gc = try make([2, 3])
        try expect(.gemm) { b.gemm(transposeA: false, transposeB: false, m: 2, n: 3, k: 4, alpha: 1, a: ga, b: gb, beta: 0, c: gc) }
        try expect(.gemmBatched) {
            b.gemmBatched(transposeA: false, transposeB: false, m: 2, n: 3, k: 2, batch: 2, alpha: 1, a: ga,
                          b: try make([2, 2, 3]), beta: 0, c: try make([2, 2, 3]))
        }

        let conv = ConvGeometry(batch: 2, inChannels: 4, height: 4, width: 4, outChannels: 4, kernel: 3, padding: 1)
        let w = try make([4, 4, 3, 3])
        try expect(.conv2dForward) { b.conv2dForward(conv, input: x, weight: w, bias: nil, output: y) }
        try expect(.conv2dBackwardData) { b.conv2dBackwardData(conv, gradOutput: y, weight: w, gradInput: dx) }
        try expect(.conv2dBackwardFilter) { b.conv2dBackwardFilter(conv, input: x, gradOutput: y, gradWeight: w, mode: .overwrite) }
        try expect(.addBias) { b.addBias(y, bias: perChannel[0]) }
        try expect(.biasBackward) { b.biasBackward(gradOutput: y, gradBias: perChannel[1], mode: .overwrite) }

        try expect(.reluForward) { b.reluForward(x, output: y) }
        try expect(.reluBackward) { b.reluBackward(output: y, gradOutput: y, gradInput: dx) }

        let pool = PoolGeometry(batch: 2, channels: 4, height: 4, width: 4, window: 2, stride: 2)
        let py = try make([2, 4, 2, 2]), pooled = try make([2, 4])
        var positions = 0
        try expect(.maxPoolWorkspaceCount) { positions = b.maxPoolWorkspaceCount(pool) }
        let ws = try make([max(positions, 1)])
        try expect(.maxPoolForward) { b.maxPoolForward(pool, input: x, output: py, workspace: ws) }
        try expect(.maxPoolBackward) {
            b.maxPoolBackward(pool, input: x, output: py, workspace: ws, gradOutput: py, gradInput: dx)
        }
        try expect(.avgPoolForward) { b.avgPoolForward(pool, input: x, output: py) }
        try expect(.avgPoolBackward) { b.avgPoolBackward(pool, gradOutput: py, gradInput: dx) }
        try expect(.globalAvgPoolForward) { b.globalAvgPoolForward(input: x, output: pooled) }
        try expect(.globalAvgPoolBackward) { b.globalAvgPoolBackward(gradOutput: pooled, gradInput: dx) }

        let (gamma, beta, mean, variance, saveMean, saveInvStd, dgamma, dbeta) =
            (perChannel[0], perChannel[1], perChannel[2], perChannel[3], perChannel[4], perChannel[5], perChannel[6], perChannel[7])
        try expect(.batchNormForwardTraining) {
            b.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: mean, runningVar: variance,
                                       saveMean: saveMean, saveInvStd: saveInvStd, momentum: 0.1, epsilon: 1e-5)
        }
        try expect(.batchNormForwardInference) {
            b.batchNormForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: mean, runningVar: variance,
                                        epsilon: 1e-5)
        }
        try expect(.batchNormBackward) {
            b.batchNormBackward(input: x, gradOutput: y, gamma: gamma, saveMean: saveMean, saveInvStd: saveInvStd,
                                gradInput: dx, gradGamma: dgamma, gradBeta: dbeta, mode: .overwrite, epsilon: 1e-5)
        }
        // The fused batch norm + ReLU: one call each, under its own name (not as its parts).
        try expect(.batchNormReLUForwardTraining) {
            b.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: mean, runningVar: variance,
                                           saveMean: saveMean, saveInvStd: saveInvStd, momentum: 0.1, epsilon: 1e-5)
        }
        try expect(.batchNormReLUForwardInference) {
            b.batchNormReLUForwardInference(input: x, output: y, gamma: gamma, beta: beta, runningMean: mean,
                                            runningVar: variance, epsilon: 1e-5)
        }
        try expect(.batchNormReLUBackward) {
            b.batchNormReLUBackward(input: x, output: y, gradOutput: mask, gamma: gamma, beta: beta, saveMean: saveMean, saveInvStd: saveInvStd,
                                    gradInput: dx, gradGamma: dgamma, gradBeta: dbeta, mode: .overwrite, epsilon: 1e-5)
        }
        try expect(.batchNormAddReLUForwardTraining) {
            b.batchNormAddReLUForwardTraining(input: x, residual: mask, output: y, gamma: gamma, beta: beta, runningMean: mean,
                                              runningVar: variance, saveMean: saveMean, saveInvStd: saveInvStd,
                                              momentum: 0.1, epsilon: 1e-5)
        }
        try expect(.batchNormAddReLUForwardInference) {
            b.batchNormAddReLUForwardInference(input: x, residual: mask, output: y, gamma: gamma, beta: beta, runningMean: mean,
                                               runningVar: variance, epsilon: 1e-5)
        }

        try expect(.softmaxCrossEntropy) {
            b.softmaxCrossEntropy(logits: logits, labels: labels, losses: rows, gradLogits: nil, gradScale: 1)
        }

        try expect(.fill) { b.fill(y, value: 1) }
        try expect(.add) { b.add(x, y, output: dx) }
        try expect(.scale) { b.scale(x, by: 2, output: dx) }
        try expect(.axpy) { b.axpy(alpha: 1, x: x, y: dx) }
        try expect(.sum) { XCTAssertEqual(try b.sum(y), Float(y.count)) }
        try expect(.argmax) { b.argmax(rows: logits, output: rows) }
        try expect(.sumIntoSlot) { b.sum(y, into: slots, slot: 0) }
        try expect(.countCorrect) { b.countCorrect(logits: logits, labels: labels, into: slots, slot: 1) }

        try expect(.dropoutForward) { b.dropoutForward(x, output: y, mask: mask, probability: 0.5, seed: 1, counter: 0) }
        try expect(.dropoutBackward) { b.dropoutBackward(gradOutput: y, mask: mask, gradInput: dx) }
        try expect(.fillUniform) { b.fillUniform(y, low: 0, high: 1, seed: 1, counter: 0) }
        try expect(.fillNormal) { b.fillNormal(y, mean: 0, std: 1, seed: 1, counter: 0) }

        try expect(.sgdUpdate) {
            b.sgdUpdate(parameter: x, gradient: y, velocity: nil, learningRate: 0.1, momentum: 0, weightDecay: 0, nesterov: false)
        }
        try expect(.rmspropUpdate) {
            b.rmspropUpdate(parameter: x, gradient: y, squareAverage: dx, momentumBuffer: nil, learningRate: 0.1,
                            alpha: 0.99, epsilon: 1e-8, momentum: 0, weightDecay: 0)
        }
        try expect(.adamUpdate) {
            b.adamUpdate(parameter: x, gradient: y, firstMoment: dx, secondMoment: mask, learningRate: 0.1, beta1: 0.9,
                         beta2: 0.999, epsilon: 1e-8, weightDecay: 0, decoupled: false, step: 1)
        }

        try expect(.randomCropFlip) { b.randomCropFlip(x, output: y, padding: 1, allowFlip: true, seed: 1, counter: 0) }
        try expect(.normalizeChannels) { b.normalizeChannels(x, output: y, mean: [0, 0, 0, 0], std: [1, 1, 1, 1]) }

        let wide = try make([2, 8, 2, 2])
        try expect(.shortcutPadForward) { b.shortcutPadForward(x, output: wide, stride: 2, channelOffset: 2) }
        try expect(.shortcutPadBackward) { b.shortcutPadBackward(gradOutput: wide, gradInput: dx, stride: 2, channelOffset: 2) }

        XCTAssertEqual(seen, BackendKernel.allCases, "every BackendKernel, in the protocol's order")
    }

    /// The call value carries the arguments: its tensors in the signature's order (a nil one left
    /// out), the FLOP count and the batch-norm epsilon, and the arguments by pattern matching.
    func testTheCallCarriesItsArguments() throws {
        final class Last: ForwardingBackend {
            var last: BackendCall?
            override func around<R>(_ call: BackendCall, _ body: () throws -> R) rethrows -> R {
                last = call
                return try body()
            }
        }
        let b = Last(wrapping: CPUBackend())
        let g = ConvGeometry(batch: 2, inChannels: 3, height: 5, width: 5, outChannels: 4, kernel: 3, stride: 1, padding: 1)
        let x = try b.base.allocate(g.inputShape), w = try b.base.allocate(g.weightShape), y = try b.base.allocate(g.outputShape)
        b.conv2dForward(g, input: x, weight: w, bias: nil, output: y)
        let conv = try XCTUnwrap(b.last)
        XCTAssertEqual(conv.kernel, .conv2dForward)
        XCTAssertEqual(conv.tensors.map(\.shape), [g.inputShape, g.weightShape, g.outputShape], "nil bias left out")
        XCTAssertEqual(conv.flops, g.flops)
        XCTAssertNil(conv.epsilon)
        guard case let .conv2dForward(geometry, input, _, bias, _) = conv else { return XCTFail("\(conv)") }
        XCTAssertEqual(geometry, g)
        XCTAssertTrue(input.storage === x.storage)
        XCTAssertNil(bias)

        let a = try b.base.allocate([2, 4]), m = try b.base.allocate([3, 4]), c = try b.base.allocate([2, 3])
        b.gemm(transposeA: false, transposeB: true, m: 2, n: 3, k: 4, alpha: 1, a: a, b: m, beta: 0, c: c)
        XCTAssertEqual(b.last?.flops, 2 * 2 * 3 * 4)
        XCTAssertEqual(b.last?.tensors.map(\.shape), [[2, 4], [3, 4], [2, 3]])

        let bx = try b.base.allocate([2, 3]), by = try b.base.allocate([2, 3])
        let perChannel = try (0..<4).map { _ in try b.base.allocate([3]) }
        b.batchNormForwardInference(input: bx, output: by, gamma: perChannel[0], beta: perChannel[1],
                                    runningMean: perChannel[2], runningVar: perChannel[3], epsilon: 1e-3)
        XCTAssertEqual(b.last?.kernel, .batchNormForwardInference)
        XCTAssertEqual(b.last?.epsilon, 1e-3)
        XCTAssertEqual(b.last?.tensors.count, 6)
        XCTAssertEqual(b.last?.flops, 0)
    }
}
