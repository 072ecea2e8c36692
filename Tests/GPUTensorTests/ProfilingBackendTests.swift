import XCTest
import GPUTensor

final class ProfilingBackendTests: XCTestCase {
    /// Runs conv forward + bias, relu and a gemm through `b` on fixed inputs; returns the outputs.
    private func run(_ b: Backend, _ g: ConvGeometry) throws -> [Tensor] {
        let x = try b.allocate(g.inputShape), w = try b.allocate(g.weightShape), bias = try b.allocate([g.outChannels])
        b.fillUniform(x, low: -1, high: 1, seed: 7, counter: 0)
        b.fillUniform(w, low: -0.5, high: 0.5, seed: 7, counter: 1)
        b.fillUniform(bias, low: -0.1, high: 0.1, seed: 7, counter: 2)
        let y = try b.allocate(g.outputShape), r = try b.allocate(g.outputShape)
        b.conv2dForward(g, input: x, weight: w, bias: bias, output: y)
        b.reluForward(y, output: r)
        b.reluForward(r, output: r)                       // in place, a second call
        let a = try b.allocate([6, 5]), m = try b.allocate([5, 4]), c = try b.allocate([6, 4])
        b.fillUniform(a, low: -1, high: 1, seed: 7, counter: 3)
        b.fillUniform(m, low: -1, high: 1, seed: 7, counter: 4)
        b.gemm(transposeA: false, transposeB: false, m: 6, n: 4, k: 5, alpha: 1, a: a, b: m, beta: 0, c: c)
        return [y, r, c]
    }

    func testCountsTimesFlopsAndBitIdenticalResults() throws {
        let g = ConvGeometry(batch: 2, inChannels: 3, height: 9, width: 8, outChannels: 5, kernel: 3, stride: 1, padding: 1)
        let cpu = CPUBackend(threads: 2)
        let profiler = ProfilingBackend(wrapping: CPUBackend(threads: 2))
        XCTAssertEqual(profiler.device, cpu.device)
        XCTAssertEqual(profiler.name, cpu.name)

        let expected = try run(cpu, g).map { try cpu.download($0) }
        let got = try run(profiler, g).map { try profiler.download($0) }
        for (i, (e, a)) in zip(expected, got).enumerated() {
            XCTAssertEqual(e.map(\.bitPattern), a.map(\.bitPattern), "output \(i) differs from the unwrapped backend")
        }

        let byName = Dictionary(uniqueKeysWithValues: profiler.report().map { ($0.name, $0) })
        XCTAssertEqual(byName["conv2dForward"]?.calls, 1)
        XCTAssertEqual(byName["conv2dForward"]?.flops, g.flops)
        XCTAssertEqual(byName["reluForward"]?.calls, 2)
        XCTAssertEqual(byName["reluForward"]?.flops, 0)
        XCTAssertEqual(byName["gemm"]?.calls, 1)
        XCTAssertEqual(byName["gemm"]?.flops, 2 * 6 * 4 * 5)
        XCTAssertEqual(byName["fillUniform"]?.calls, 5)
        XCTAssertEqual(byName["allocate"]?.calls, 8)
        XCTAssertEqual(byName["download"]?.calls, 3)
        XCTAssertNil(byName["conv2dBackwardData"], "kernels never called are not reported")
        XCTAssertNotNil(byName["conv2dForward"]?.gflopsPerSecond)
        XCTAssertNil(byName["reluForward"]?.gflopsPerSecond)

        let report = profiler.report()
        XCTAssertTrue(report.allSatisfy { $0.seconds >= 0 })
        XCTAssertEqual(report.map(\.seconds), report.map(\.seconds).sorted(by: >), "sorted by time")

        let table = profiler.table(totalSeconds: 1)
        XCTAssertTrue(table.contains("conv2dForward"))
        XCTAssertTrue(table.contains("outside backend"))
        XCTAssertEqual(table.split(separator: "\n").count, 1 + report.count + 2)

        profiler.reset()
        XCTAssertTrue(profiler.report().isEmpty)
        _ = try profiler.sum(profiler.allocate([3]))
        XCTAssertEqual(profiler.report().map(\.name).sorted(), ["allocate", "sum"])
    }
}
