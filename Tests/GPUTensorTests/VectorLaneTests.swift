import XCTest
import GPUTensor

/// The CPU's elementwise kernels run eight lanes at a time and the last `count % 8` elements one
/// by one. Each lane must give the bits the one-by-one path gives: otherwise a result would depend
/// on where a tensor's length puts its block boundaries (and on the thread split). Each kernel
/// runs on a 37-element tensor (four blocks and a tail) and on 37 one-element tensors (all tail),
/// for several steps, and every value must be bitwise equal.
final class VectorLaneTests: XCTestCase {
    let b = CPUBackend(threads: 1)
    let n = 37

    private func values(_ seed: UInt64, low: Float = -1, high: Float = 1) throws -> [Float] {
        let t = try b.allocate([n])
        b.fillUniform(t, low: low, high: high, seed: seed, counter: 0)
        return try b.download(t)
    }

    /// `update` applies one step to (parameter, gradient, state...) tensors of one shape. Runs it on
    /// the whole vectors and on each element alone, `steps` times, and compares all the tensors.
    private func assertLanesEqualTail(_ what: String, states: Int, steps: Int = 3,
                                      _ update: (_ step: Int, _ tensors: [Tensor]) -> Void,
                                      file: StaticString = #filePath, line: UInt = #line) throws {
        let start = try [values(1)] + (0..<states).map { try values(10 + UInt64($0), low: 0, high: 1) }
        let whole = try start.map { try b.tensor($0, shape: [n]) }
        let single = try (0..<n).map { i in try start.map { try b.tensor([$0[i]], shape: [1]) } }
        for step in 1...steps {
            let g = try values(100 + UInt64(step))
            update(step, [whole[0], try b.tensor(g, shape: [n])] + whole.dropFirst())
            for i in 0..<n { update(step, [single[i][0], try b.tensor([g[i]], shape: [1])] + single[i].dropFirst()) }
        }
        for k in whole.indices {
            let lanes = try b.download(whole[k]), alone = try (0..<n).map { try b.download(single[$0][k])[0] }
            let differing = (0..<n).filter { lanes[$0].bitPattern != alone[$0].bitPattern }
            XCTAssertEqual(differing, [], "\(what): tensor \(k) differs at these elements", file: file, line: line)
            // A check that could not fail: every element moved (the update did something).
            if k == 0 { XCTAssertTrue((0..<n).allSatisfy { lanes[$0] != start[0][$0] }, "\(what) changed nothing", file: file, line: line) }
        }
    }

    func testOptimizerLanesGiveTheScalarBits() throws {
        for decoupled in [false, true] {
            try assertLanesEqualTail("adam decoupled=\(decoupled)", states: 2) { step, t in
                b.adamUpdate(parameter: t[0], gradient: t[1], firstMoment: t[2], secondMoment: t[3], learningRate: 0.01,
                             beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, decoupled: decoupled, step: step)
            }
        }
        try assertLanesEqualTail("rmsprop", states: 1) { _, t in
            b.rmspropUpdate(parameter: t[0], gradient: t[1], squareAverage: t[2], momentumBuffer: nil, learningRate: 0.01,
                            alpha: 0.99, epsilon: 1e-8, momentum: 0, weightDecay: 0.01)
        }
        try assertLanesEqualTail("rmsprop momentum", states: 2) { _, t in
            b.rmspropUpdate(parameter: t[0], gradient: t[1], squareAverage: t[2], momentumBuffer: t[3], learningRate: 0.01,
                            alpha: 0.99, epsilon: 1e-8, momentum: 0.9, weightDecay: 0.01)
        }
        try assertLanesEqualTail("sgd", states: 0) { _, t in
            b.sgdUpdate(parameter: t[0], gradient: t[1], velocity: nil, learningRate: 0.1, momentum: 0, weightDecay: 0.01,
                        nesterov: false)
        }
        for nesterov in [false, true] {
            try assertLanesEqualTail("sgd momentum nesterov=\(nesterov)", states: 1) { _, t in
                b.sgdUpdate(parameter: t[0], gradient: t[1], velocity: t[2], learningRate: 0.1, momentum: 0.9,
                            weightDecay: 0.01, nesterov: nesterov)
            }
        }
    }

    func testReLULanesGiveTheScalarBits() throws {
        // Negative, positive, both zeros and NaN, in lanes and in the tail.
        var x = try values(7)
        for i in stride(from: 0, to: n, by: 9) { x[i] = -0.0 }
        for i in stride(from: 4, to: n, by: 11) { x[i] = .nan }
        x[35] = 0
        let dy = try values(8)
        let xt = try b.tensor(x, shape: [n]), yt = try b.allocate([n]), dyt = try b.tensor(dy, shape: [n]), dxt = try b.allocate([n])
        b.reluForward(xt, output: yt)
        b.reluBackward(output: yt, gradOutput: dyt, gradInput: dxt)
        let y = try b.download(yt), dx = try b.download(dxt)
        for i in 0..<n {
            let x1 = try b.tensor([x[i]], shape: [1]), y1 = try b.allocate([1]), dy1 = try b.tensor([dy[i]], shape: [1])
            let dx1 = try b.allocate([1])
            b.reluForward(x1, output: y1)
            b.reluBackward(output: y1, gradOutput: dy1, gradInput: dx1)
            XCTAssertEqual(y[i].bitPattern, try b.download(y1)[0].bitPattern, "relu forward at \(i) (x \(x[i]))")
            XCTAssertEqual(dx[i].bitPattern, try b.download(dx1)[0].bitPattern, "relu backward at \(i) (x \(x[i]))")
        }
        XCTAssertTrue(y[4].isNaN && y[0].bitPattern == (-0.0 as Float).bitPattern, "NaN and -0 pass, as in PyTorch")
    }
}
