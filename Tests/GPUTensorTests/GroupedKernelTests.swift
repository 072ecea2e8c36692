import XCTest
@testable import GPUTensor

/// The kernels trial groups fuse with: a grouped convolution equals G separate convolutions on
/// the groups' channel blocks, and `gemmBatched` equals G separate `gemm` calls. (Against the
/// float64 references: `KernelChecks.convolutionKernels`, run by ConvolutionTests, includes the
/// grouped shapes and the batched GEMM.)
final class GroupedKernelTests: XCTestCase {
    let backend = CPUBackend(threads: 2)

    /// Values in [-1, 1) from a small LCG: the data in logical (N, C, H, W) order.
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
        }
    }

    /// Channels `block` (of `blocks` equal blocks) of a logical (N, C, H, W) array.
    func channelBlock(_ x: [Float], _ shape: [Int], _ block: Int, _ blocks: Int) -> [Float] {
        let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3]), cb = c / blocks
        var out: [Float] = []
        for i in 0..<n {
            let start = (i * c + block * cb) * hw
            out += x[start..<(start + cb * hw)]
        }
        return out
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) - (1e-5 + 1e-5 * abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 0, "\(what): beyond atol 1e-5 + rtol 1e-5 by \(worst)", file: file, line: line)
    }

    func testGroupedConvolutionEqualsSeparateConvolutions() throws {
        for (index, g) in [ConvGeometry(batch: 3, inChannels: 12, height: 8, width: 8, outChannels: 18, kernel: 3, padding: 1, groups: 3),
                           ConvGeometry(batch: 2, inChannels: 8, height: 7, width: 6, outChannels: 8, kernel: 3, stride: 2, padding: 1, groups: 2),
                           ConvGeometry(batch: 2, inChannels: 64, height: 6, width: 6, outChannels: 64, kernel: 3, padding: 1, groups: 4)]
            .enumerated() {
            let seed = UInt64(10 * index)
            let x = values(g.inputShape.reduce(1, *), seed: seed), w = values(g.weightShape.reduce(1, *), seed: seed + 1)
            let b = values(g.outChannels, seed: seed + 2), dy = values(g.outputShape.reduce(1, *), seed: seed + 3)
            let y = try backend.allocate(g.outputShape), dx = try backend.allocate(g.inputShape), dw = try backend.allocate(g.weightShape)
            let dyt = try backend.tensor(dy, shape: g.outputShape), xt = try backend.tensor(x, shape: g.inputShape)
            let wt = try backend.tensor(w, shape: g.weightShape)
            backend.conv2dForward(g, input: xt, weight: wt, bias: try backend.tensor(b, shape: [g.outChannels]), output: y)
            backend.conv2dBackwardData(g, gradOutput: dyt, weight: wt, gradInput: dx)
            backend.conv2dBackwardFilter(g, input: xt, gradOutput: dyt, gradWeight: dw, mode: .overwrite)
            let (yAll, dxAll, dwAll) = (try backend.download(y), try backend.download(dx), try backend.download(dw))

            // Block k alone: an ordinary convolution of Cin/G -> Cout/G channels.
            let one = ConvGeometry(batch: g.batch, inChannels: g.inChannels / g.groups, height: g.height, width: g.width,
                                   outChannels: g.outChannels / g.groups, kernelH: g.kernelH, kernelW: g.kernelW,
                                   strideH: g.strideH, strideW: g.strideW, padH: g.padH, padW: g.padW)
            let wPer = one.weightShape.reduce(1, *)
            for k in 0..<g.groups {
                let xk = try backend.tensor(channelBlock(x, g.inputShape, k, g.groups), shape: one.inputShape)
                let wk = try backend.tensor(Array(w[(k * wPer)..<((k + 1) * wPer)]), shape: one.weightShape)
                let bk = try backend.tensor(Array(b[(k * one.outChannels)..<((k + 1) * one.outChannels)]), shape: [one.outChannels])
                let dyk = try backend.tensor(channelBlock(dy, g.outputShape, k, g.groups), shape: one.outputShape)
                let yk = try backend.allocate(one.outputShape), dxk = try backend.allocate(one.inputShape)
                let dwk = try backend.allocate(one.weightShape)
                backend.conv2dForward(one, input: xk, weight: wk, bias: bk, output: yk)
                backend.conv2dBackwardData(one, gradOutput: dyk, weight: wk, gradInput: dxk)
                backend.conv2dBackwardFilter(one, input: xk, gradOutput: dyk, gradWeight: dwk, mode: .overwrite)
                assertClose(channelBlock(yAll, g.outputShape, k, g.groups), try backend.download(yk), "\(g) forward, group \(k)")
                assertClose(channelBlock(dxAll, g.inputShape, k, g.groups), try backend.download(dxk), "\(g) backward-data, group \(k)")
                assertClose(Array(dwAll[(k * wPer)..<((k + 1) * wPer)]), try backend.download(dwk), "\(g) backward-filter, group \(k)")
            }
        }
    }

    func testGemmBatchedEqualsSeparateGemms() throws {
        let (batch, m, n, k) = (4, 6, 5, 9)
        for (ta, tb) in [(false, true), (true, false), (false, false), (true, true)] {
            let a = values(batch * m * k, seed: 1), b = values(batch * k * n, seed: 2), c = values(batch * m * n, seed: 3)
            let ct = try backend.tensor(c, shape: [batch, m, n])
            backend.gemmBatched(transposeA: ta, transposeB: tb, m: m, n: n, k: k, batch: batch, alpha: 1.5,
                                a: try backend.tensor(a, shape: [batch * m * k]), b: try backend.tensor(b, shape: [batch, k * n]),
                                beta: -0.5, c: ct)
            let all = try backend.download(ct)
            for i in 0..<batch {
                let ci = try backend.tensor(Array(c[(i * m * n)..<((i + 1) * m * n)]), shape: [m, n])
                backend.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 1.5,
                             a: try backend.tensor(Array(a[(i * m * k)..<((i + 1) * m * k)]), shape: ta ? [k, m] : [m, k]),
                             b: try backend.tensor(Array(b[(i * k * n)..<((i + 1) * k * n)]), shape: tb ? [n, k] : [k, n]),
                             beta: -0.5, c: ci)
                XCTAssertEqual(Array(all[(i * m * n)..<((i + 1) * m * n)]), try backend.download(ci), "matrix \(i) \(ta) \(tb)")
            }
        }
    }
}
