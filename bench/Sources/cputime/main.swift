import GPUTensor
#if canImport(Glibc)
import Glibc
#endif

// One-thread rates by minimum thread-CPU time: preemption by other processes does not count, so
// the ratios to sgemm hold on a machine shared with compiles (wall-clock runs there do not).
let args = CommandLine.arguments
let batch = args.count > 1 ? Int(args[1]) ?? 16 : 16
let repeats = args.count > 2 ? Int(args[2]) ?? 15 : 15
let backend = CPUBackend(threads: 1)

func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
func best(_ body: () -> Void) -> Double {
    body()
    var m = Double.infinity
    for _ in 0..<repeats { let t = cpuSeconds(); body(); m = min(m, cpuSeconds() - t) }
    return m
}
func random(_ shape: [Int], _ seed: UInt64) throws -> Tensor {
    try backend.tensor((0..<shape.reduce(1, *)).map { 2 * Philox.uniform(seed: seed, counter: 1, index: $0) - 1 }, shape: shape)
}

let n = 1024
let a = try random([n, n], 1), b = try random([n, n], 2), c = try backend.allocate([n, n])
let sgemm = 2 * Double(n * n * n) / best {
    backend.gemm(transposeA: false, transposeB: false, m: n, n: n, k: n, alpha: 1, a: a, b: b, beta: 0, c: c)
} / 1e9
print("\(backend.name), one thread, min thread-CPU time of \(repeats): sgemm 1024^3 \(Int(sgemm)) GFLOP/s")
for g in OpsBenchmark.resnet20Convolutions(batch: batch) {
    let x = try random(g.inputShape, 3), w = try random(g.weightShape, 4), dy = try random(g.outputShape, 5)
    let y = try backend.allocate(g.outputShape), dx = try backend.allocate(g.inputShape)
    let dw = try backend.allocate(g.weightShape)
    let f = best { backend.conv2dForward(g, input: x, weight: w, bias: nil, output: y) }
    let d = best { backend.conv2dBackwardData(g, gradOutput: dy, weight: w, gradInput: dx) }
    let k = best { backend.conv2dBackwardFilter(g, input: x, gradOutput: dy, gradWeight: dw, mode: .overwrite) }
    func pct(_ s: Double, _ passes: Double = 1) -> String {
        let r = passes * g.flops / s / 1e9
        return "\(Int(r)) GFLOP/s \(Int((100 * r / sgemm).rounded()))%"
    }
    print("\(g): fwd \(pct(f)), bwd-data \(pct(d)), bwd-filter \(pct(k)), total \(pct(f + d + k, 3))")
}
