#if canImport(Glibc)
import Glibc
#endif

/// The median time of one kernel (or kernel sequence) and its rate.
public struct OpTiming: Sendable {
    /// What ran, with the shape: `conv 16->16 3x3/1 pad 1 on 128x32x32 forward`.
    public let name: String
    /// Useful flops (2 x multiply-adds of the direct algorithm) per second, in 10^9.
    public let gflops: Double
    /// Median wall time of one call, in milliseconds.
    public let ms: Double
}

/// What `OpsBenchmark.run` measured.
public struct OpsReport: Sendable {
    public let backend: String
    /// Single-precision GEMM 1024 x 1024 x 1024: the machine's practical ceiling.
    public let sgemmGFLOPS: Double
    /// For every convolution shape: forward, backward-data, backward-filter and `fwd+bwd`
    /// (the three run back to back, their summed flops over the sequence's time).
    public let ops: [OpTiming]

    /// One JSON object: `{"backend": ..., "sgemm_gflops": ..., "ops": [{"name", "gflops", "ms"}, ...]}`.
    public func json() -> String {
        let items = ops.map { "{\"name\": \(jsonString($0.name)), \"gflops\": \(jsonNumber($0.gflops)), \"ms\": \(jsonNumber($0.ms))}" }
        return "{\"backend\": \(jsonString(backend)), \"sgemm_gflops\": \(jsonNumber(sgemmGFLOPS)), \"ops\": [\n  "
            + items.joined(separator: ",\n  ") + "\n]}"
    }

    /// A fixed-width table with each op's share of the sgemm rate.
    public func table() -> String {
        let width = max(40, ops.map(\.name.count).max() ?? 0)
        var lines = ["\(backend): sgemm 1024^3 \(fixed(sgemmGFLOPS, 1)) GFLOP/s",
                     pad("op", width) + pad("ms", 10, left: true) + pad("GFLOP/s", 10, left: true)
                        + pad("of sgemm", 10, left: true)]
        for op in ops {
            lines.append(pad(op.name, width) + pad(fixed(op.ms, 3), 10, left: true)
                         + pad(fixed(op.gflops, 1), 10, left: true)
                         + pad(fixed(100 * op.gflops / sgemmGFLOPS, 1) + "%", 10, left: true))
        }
        return lines.joined(separator: "\n")
    }
}

/// Times the GEMM and convolution kernels of a backend on ResNet-20's shapes.
///
///     let report = try OpsBenchmark.run(on: CPUBackend())
///     print(report.table())
public enum OpsBenchmark {
    /// ResNet-20's convolutions on 32x32 images (3x3, padding 1): the stem, the stride-1 convs
    /// of the three stages and the two stride-2 convs that open stages 2 and 3.
    public static func resnet20Convolutions(batch: Int = 128) -> [ConvGeometry] {
        [(3, 16, 32, 1), (16, 16, 32, 1), (16, 32, 32, 2), (32, 32, 16, 1), (32, 64, 16, 2), (64, 64, 8, 1)].map {
            ConvGeometry(batch: batch, inChannels: $0.0, height: $0.2, width: $0.2, outChannels: $0.1,
                         kernel: 3, stride: $0.3, padding: 1)
        }
    }

    /// Runs every measurement in `repeats` interleaved rounds (sgemm, then every convolution op)
    /// after one warm-up round, and reports each op's median. Interleaving spreads the noise of
    /// a shared machine evenly, so the ratios to sgemm are comparable within one report.
    public static func run(on backend: Backend, batch: Int = 128, repeats: Int = 5) throws -> OpsReport {
        precondition(repeats > 0 && batch > 0)
        var names = [String](), flops = [Double](), bodies = [() -> Void]()
        func add(_ name: String, _ f: Double, _ body: @escaping () -> Void) {
            names.append(name); flops.append(f); bodies.append(body)
        }
        let n = 1024
        let a = try randomTensor(backend, [n, n], seed: 1), b = try randomTensor(backend, [n, n], seed: 2)
        let c = try backend.allocate([n, n])
        add("sgemm \(n)x\(n)x\(n)", 2 * Double(n * n * n)) {
            backend.gemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: a, b: b, beta: 0, c: c)
        }
        for g in resnet20Convolutions(batch: batch) {
            let x = try randomTensor(backend, g.inputShape, seed: 3)
            let w = try randomTensor(backend, g.weightShape, seed: 4)
            let dy = try randomTensor(backend, g.outputShape, seed: 5)
            let y = try backend.allocate(g.outputShape), dx = try backend.allocate(g.inputShape)
            let dw = try backend.allocate(g.weightShape)
            let forward = { backend.conv2dForward(g, input: x, weight: w, bias: nil, output: y) }
            let backwardData = { backend.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx) }
            let backwardFilter = {
                backend.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: .overwrite)
            }
            add("\(g) forward", g.flops, forward)
            add("\(g) backward-data", g.flops, backwardData)
            add("\(g) backward-filter", g.flops, backwardFilter)
            add("\(g) fwd+bwd", 3 * g.flops) { forward(); backwardData(); backwardFilter() }
        }
        var seconds = [[Double]](repeating: [], count: bodies.count)
        for round in 0...repeats {
            for (i, body) in bodies.enumerated() {
                try backend.synchronize()
                let start = monotonicSeconds()
                body()
                try backend.synchronize()
                if round > 0 { seconds[i].append(monotonicSeconds() - start) }   // round 0 warms up
            }
        }
        let timings = (0..<bodies.count).map { i -> OpTiming in
            let s = median(seconds[i])
            return OpTiming(name: names[i], gflops: flops[i] / s / 1e9, ms: s * 1e3)
        }
        return OpsReport(backend: backend.name, sgemmGFLOPS: timings[0].gflops, ops: Array(timings.dropFirst()))
    }

    static func median(_ values: [Double]) -> Double {
        let v = values.sorted()
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Uniform values in [-1, 1) (from Philox, so no other kernel is needed).
    static func randomTensor(_ backend: Backend, _ shape: [Int], seed: UInt64) throws -> Tensor {
        let count = shape.reduce(1, *)
        return try backend.tensor((0..<count).map { 2 * Philox.uniform(seed: seed, counter: 0xBE4C, index: $0) - 1 },
                                  shape: shape)
    }
}

// MARK: Formatting without Foundation

private func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let negative = x < 0
    let units = (abs(x) * scale).rounded()
    let whole = Int(units / scale), fraction = Int(units - Double(whole) * scale)
    var digits = String(fraction)
    while digits.count < decimals { digits = "0" + digits }
    return (negative && units > 0 ? "-" : "") + String(whole) + (decimals > 0 ? "." + digits : "")
}

private func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - s.count))
    return left ? fill + s : s + fill
}

private func jsonNumber(_ x: Double) -> String { x.isFinite ? fixed(x, 4) : "null" }

private func jsonString(_ s: String) -> String {
    var out = "\""
    for ch in s.unicodeScalars {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default:
            if ch.value < 0x20 {
                let hex = String(ch.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(ch)
            }
        }
    }
    return out + "\""
}
