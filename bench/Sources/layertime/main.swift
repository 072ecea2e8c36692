import GPUTensor
#if canImport(Glibc)
import Glibc
#endif

// One-thread times of the CPU backend's memory-bound layer kernels on channels-last storage
// (batch norm, ReLU, max pooling, bias backward, add), by minimum thread-CPU time: preemption by
// other processes does not count (bench/NOTES.md section 6).
//   layertime [repeats]
let args = CommandLine.arguments
let repeats = args.count > 1 ? Int(args[1]) ?? 15 : 15
let backend = CPUBackend(threads: 1)

func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
func bestMs(_ body: () -> Void) -> Double {
    body()
    var m = Double.infinity
    for _ in 0..<repeats { let t = cpuSeconds(); body(); m = min(m, cpuSeconds() - t) }
    return m * 1e3
}
func fmt(_ v: Double) -> String {
    let s = String(Int((v * 1000).rounded()))
    return s.count > 3 ? String(s.dropLast(3)) + "." + String(s.suffix(3)) : "0." + String(repeating: "0", count: 3 - s.count) + s
}

print("\(backend.name), one thread, min thread-CPU time of \(repeats), ms per call")
print("| shape | BN fwd train | BN bwd | ReLU fwd | ReLU bwd | max-pool 2x2 fwd | max-pool bwd | bias bwd | add |")
print("|---|---|---|---|---|---|---|---|---|")
for shape in [[128, 16, 32, 32], [128, 32, 16, 16], [128, 64, 8, 8], [128, 48, 32, 32], [64, 512, 4, 4]] {
    let c = [shape[1]]
    let x = try backend.allocate(shape), y = try backend.allocate(shape), dx = try backend.allocate(shape)
    backend.fillUniform(x, low: -1, high: 2, seed: 1, counter: 0)
    let gamma = try backend.allocate(c), beta = try backend.allocate(c)
    let rm = try backend.allocate(c), rv = try backend.allocate(c), sm = try backend.allocate(c), si = try backend.allocate(c)
    let dg = try backend.allocate(c), db = try backend.allocate(c)
    backend.fill(gamma, value: 1)
    let pool = PoolGeometry(batch: shape[0], channels: shape[1], height: shape[2], width: shape[3], window: 2, stride: 2)
    let py = try backend.allocate(pool.outputShape)
    let bnF = bestMs {
        backend.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv,
                                         saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
    }
    let bnB = bestMs {
        backend.batchNormBackward(input: x, gradOutput: y, gamma: gamma, saveMean: sm, saveInvStd: si, gradInput: dx,
                                  gradGamma: dg, gradBeta: db, mode: .overwrite, epsilon: 1e-5)
    }
    let reluF = bestMs { backend.reluForward(x, output: y) }
    let reluB = bestMs { backend.reluBackward(output: y, gradOutput: x, gradInput: dx) }
    let ws = try backend.allocateMaxPoolWorkspace(pool)
    let poolF = bestMs { backend.maxPoolForward(pool, input: x, output: py, workspace: ws) }
    let poolB = bestMs { backend.maxPoolBackward(pool, input: x, output: py, workspace: ws, gradOutput: py, gradInput: dx) }
    let biasB = bestMs { backend.biasBackward(gradOutput: x, gradBias: db, mode: .overwrite) }
    let add = bestMs { backend.add(x, y, output: dx) }
    let cells = [bnF, bnB, reluF, reluB, poolF, poolB, biasB, add].map(fmt).joined(separator: " | ")
    print("| \(shape.map(String.init).joined(separator: "x")) | \(cells) |")
}

// Batch norm + ReLU (+ residual add) fused against the kernels they replace (section 10). The
// unfused columns are the sums of the separate kernels' times, as a training step runs them.
print("")
print("fused against unfused (sum of the separate kernels), ms per call")
print("| shape | BN+ReLU fwd | BN fwd + ReLU fwd | BN+ReLU bwd | ReLU bwd + BN bwd | BN+add+ReLU fwd | BN fwd + add + ReLU fwd |")
print("|---|---|---|---|---|---|---|")
for shape in [[128, 16, 32, 32], [128, 32, 16, 16], [128, 64, 8, 8], [64, 64, 32, 32], [64, 256, 8, 8], [64, 512, 4, 4]] {
    let c = [shape[1]]
    let x = try backend.allocate(shape), y = try backend.allocate(shape), dy = try backend.allocate(shape)
    let dx = try backend.allocate(shape), s = try backend.allocate(shape)
    backend.fillUniform(x, low: -1, high: 2, seed: 1, counter: 0)
    backend.fillUniform(dy, low: -1, high: 1, seed: 2, counter: 0)
    backend.fillUniform(s, low: -1, high: 1, seed: 3, counter: 0)
    let gamma = try backend.allocate(c), beta = try backend.allocate(c)
    let rm = try backend.allocate(c), rv = try backend.allocate(c), sm = try backend.allocate(c), si = try backend.allocate(c)
    let dg = try backend.allocate(c), db = try backend.allocate(c)
    backend.fill(gamma, value: 1)
    let fusedF = bestMs {
        backend.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv,
                                             saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
    }
    let bnF = bestMs {
        backend.batchNormForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv,
                                         saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
    }
    let reluF = bestMs { backend.reluForward(y, output: y) }
    backend.batchNormReLUForwardTraining(input: x, output: y, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv,
                                         saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
    let fusedB = bestMs {
        backend.batchNormReLUBackward(input: x, output: y, gradOutput: dy, gamma: gamma, beta: beta, saveMean: sm,
                                      saveInvStd: si, gradInput: dx, gradGamma: dg, gradBeta: db, mode: .overwrite, epsilon: 1e-5)
    }
    let reluB = bestMs { backend.reluBackward(output: y, gradOutput: dy, gradInput: dx) }
    let bnB = bestMs {
        backend.batchNormBackward(input: x, gradOutput: dx, gamma: gamma, saveMean: sm, saveInvStd: si, gradInput: dy,
                                  gradGamma: dg, gradBeta: db, mode: .overwrite, epsilon: 1e-5)
    }
    let fusedA = bestMs {
        backend.batchNormAddReLUForwardTraining(input: x, residual: s, output: y, gamma: gamma, beta: beta, runningMean: rm,
                                                runningVar: rv, saveMean: sm, saveInvStd: si, momentum: 0.1, epsilon: 1e-5)
    }
    let add = bestMs { backend.add(y, s, output: y) }
    let cells = [fusedF, bnF + reluF, fusedB, reluB + bnB, fusedA, bnF + add + reluF].map(fmt).joined(separator: " | ")
    print("| \(shape.map(String.init).joined(separator: "x")) | \(cells) |")
}
