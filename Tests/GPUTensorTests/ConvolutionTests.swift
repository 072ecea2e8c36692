import XCTest
@testable import GPUTensor

final class ConvolutionTests: XCTestCase {
    /// Every GEMM / convolution / bias check of `KernelChecks.denseAlgebraKernels` and `convolutionKernels` on the CPU,
    /// with one and two worker threads (the per-thread partial sums of backward-filter differ).
    func testKernelChecksPassOnCPU() throws {
        for threads in [1, 2] {
            try assertChecksPass(CPUBackend(threads: threads), label: "\(threads) thread(s)", verbose: threads == 2)
        }
    }

    /// A plan is created once per geometry and reused: the second call of each direction
    /// gives the same (bitwise) result, with other geometries run in between.
    func testPlansAreReusedAcrossGeometries() throws {
        let backend = CPUBackend(threads: 2)
        let shapes = [ConvGeometry(batch: 3, inChannels: 8, height: 9, width: 9, outChannels: 16, kernel: 3, padding: 1),
                      ConvGeometry(batch: 3, inChannels: 16, height: 9, width: 9, outChannels: 8, kernel: 3, stride: 2, padding: 1)]
        var first = [[Float]]()
        for round in 0..<2 {
            for (i, g) in shapes.enumerated() {
                let x = try OpsBenchmark.randomTensor(backend, g.inputShape, seed: UInt64(i))
                let w = try OpsBenchmark.randomTensor(backend, g.weightShape, seed: UInt64(i + 10))
                let y = try backend.allocate(g.outputShape), dx = try backend.allocate(g.inputShape)
                let dw = try backend.allocate(g.weightShape)
                backend.conv2dForward(g, input: x, weight: w, bias: nil, output: y)
                backend.conv2dBackwardData(g, gradOutput: y, weight: w, gradInput: dx)
                backend.conv2dBackwardFilter(g, input: x, gradOutput: y, gradWeight: dw, mode: .overwrite)
                let out = try backend.download(y) + backend.download(dx) + backend.download(dw)
                if round == 0 { first.append(out) } else { XCTAssertEqual(out, first[i], "\(g)") }
            }
        }
    }

    private func assertChecksPass(_ backend: CPUBackend, label: String, only: String? = nil, verbose: Bool = false,
                                  file: StaticString = #filePath, line: UInt = #line) throws {
        var failures = [String]()
        var count = 0
        for check in (KernelChecks.denseAlgebraKernels + KernelChecks.convolutionKernels) where only.map({ check.name == $0 }) ?? true {
            for result in try check.run(backend) {
                count += 1
                if verbose { print(result.summary) }
                if !result.passed { failures.append(result.summary) }
            }
        }
        XCTAssertGreaterThan(count, 30, label, file: file, line: line)
        XCTAssertTrue(failures.isEmpty, "\(label): \(failures.count) of \(count) failed:\n" +
                      failures.joined(separator: "\n"), file: file, line: line)
    }

    // Values from numpy:
    //   x = np.arange(1, 17, dtype=float).reshape(4, 4)
    //   w = np.array([[1, 2, 0], [0, 1, -1], [2, 0, 1]], float)
    //   def conv(x, w, p):
    //       xp = np.pad(x, p); n = xp.shape[0] - 2
    //       return np.array([[(xp[i:i+3, j:j+3] * w).sum() for j in range(n)] for i in range(n)])
    //   conv(x, w, 0) -> [[33, 39], [57, 63]]
    //   conv(x, w, 1) -> [[5, 16, 19, 18], [11, 33, 39, 41], [23, 57, 63, 65], [17, 28, 31, 51]]
    //   dy = [[1, -1], [2, 0.5]]; dx[i:i+3, j:j+3] += dy[i, j] * w; dw += dy[i, j] * x[i:i+3, j:j+3]
    //   dx -> [[1, 1, -2, 0], [2, 5.5, -1, 1], [2, 0, -0.5, -1.5], [4, 1, 2, 0.5]]
    //   dw -> [[12, 14.5, 17], [22, 24.5, 27], [32, 34.5, 37]]
    let x4x4: [Float] = (1...16).map(Float.init)
    let w3x3: [Float] = [1, 2, 0, 0, 1, -1, 2, 0, 1]

    func testExactThreeByThreeOnFourByFour() throws {
        let backend = CPUBackend(threads: 2)
        let g = ConvGeometry(batch: 1, inChannels: 1, height: 4, width: 4, outChannels: 1, kernel: 3)
        let x = try backend.tensor(x4x4, shape: g.inputShape), w = try backend.tensor(w3x3, shape: g.weightShape)
        let y = try backend.allocate(g.outputShape)
        backend.conv2dForward(g, input: x, weight: w, bias: nil, output: y)
        XCTAssertEqual(try backend.download(y), [33, 39, 57, 63])

        let bias = try backend.tensor([0.5] as [Float], shape: [1])
        backend.conv2dForward(g, input: x, weight: w, bias: bias, output: y)
        XCTAssertEqual(try backend.download(y), [33.5, 39.5, 57.5, 63.5])

        let dy = try backend.tensor([1, -1, 2, 0.5] as [Float], shape: g.outputShape)
        let dx = try backend.allocate(g.inputShape)
        backend.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx)
        XCTAssertEqual(try backend.download(dx), [1, 1, -2, 0, 2, 5.5, -1, 1, 2, 0, -0.5, -1.5, 4, 1, 2, 0.5])

        let dw = try backend.tensor([Float](repeating: 1, count: 9), shape: g.weightShape)
        backend.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: .overwrite)
        XCTAssertEqual(try backend.download(dw), [12, 14.5, 17, 22, 24.5, 27, 32, 34.5, 37])
        backend.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: .accumulate)
        XCTAssertEqual(try backend.download(dw), [24, 29, 34, 44, 49, 54, 64, 69, 74])
    }

    func testExactPaddedThreeByThreeOnFourByFour() throws {
        let backend = CPUBackend(threads: 2)
        let g = ConvGeometry(batch: 2, inChannels: 1, height: 4, width: 4, outChannels: 1, kernel: 3, padding: 1)
        // The same image twice: both workers must produce the single-image answer.
        let x = try backend.tensor(x4x4 + x4x4, shape: g.inputShape)
        let w = try backend.tensor(w3x3, shape: g.weightShape)
        let y = try backend.allocate(g.outputShape)
        backend.conv2dForward(g, input: x, weight: w, bias: nil, output: y)
        let one: [Float] = [5, 16, 19, 18, 11, 33, 39, 41, 23, 57, 63, 65, 17, 28, 31, 51]
        XCTAssertEqual(try backend.download(y), one + one)
    }

    func testGemmSmallExact() throws {
        let backend = CPUBackend(threads: 1)
        // [[1, 2], [3, 4]] . [[5, 6], [7, 8]] = [[19, 22], [43, 50]]; c = 2 * that + 1 * [[1, 1], [1, 1]]
        let a = try backend.tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
        let b = try backend.tensor([5, 6, 7, 8] as [Float], shape: [2, 2])
        let c = try backend.tensor([1, 1, 1, 1] as [Float], shape: [2, 2])
        backend.gemm(transposeA: false, transposeB: false, m: 2, n: 2, k: 2, alpha: 2, a: a, b: b, beta: 1, c: c)
        XCTAssertEqual(try backend.download(c), [39, 45, 87, 101])
    }
}
