import GPUTensor

/// Training throughput of G same-shaped trials fused into one `TrialGroup` against the same G
/// trials trained one after another on the same backend, on synthetic batches (the data
/// pipeline is the same for both and left out). `strata bench groups` prints it; the study
/// engine can use it to decide where grouping loses for a shape (do not group there).
public enum GroupBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var shape: String
        public var members: Int
        public var batch: Int
        /// Member-images per second (G images per fused batch of one image).
        public var fusedImagesPerSecond: Double
        public var sequentialImagesPerSecond: Double
        /// fused / sequential: above 1, grouping wins.
        public var speedup: Double { fusedImagesPerSecond / sequentialImagesPerSecond }

        public var description: String {
            "\(shape) batch \(batch) x \(members) members: fused \(Int(fusedImagesPerSecond)) img/s, "
                + "one after another \(Int(sequentialImagesPerSecond)) img/s, ratio \(String(format2(speedup)))"
        }
    }

    /// Best of `rounds` interleaved rounds (fused, then sequential) of `steps` training steps
    /// each, after one warm-up step of each (plans, allocations).
    public static func run(spec: ModelSpec, members: Int, batch: Int, steps: Int = 10, rounds: Int = 3,
                           backend: Backend) throws -> Result {
        precondition(members >= 1 && batch >= 1 && steps >= 1 && rounds >= 1)
        let models = try (0..<members).map { i -> Model in
            let m = try Model(spec: spec)
            try m.prepare(on: backend, maxBatch: batch)
            m.initialize(seed: UInt64(i))
            return m
        }
        let optimizers = models.indices.map { _ in Optimizer(.sgd(learningRate: 0.01), backend: backend) }
        let group = try TrialGroup(members: models.indices.map { GroupMember(id: "\($0)", model: models[$0], optimizer: optimizers[$0]) },
                                   backend: backend, maxBatch: batch)
        let classes = models[0].outputShape[0]
        let x = try backend.allocate([batch] + spec.input.dims)
        backend.fillUniform(x, low: -1, high: 1, seed: 1, counter: 0)
        let y = try backend.tensor((0..<batch).map { Float($0 % classes) }, shape: [batch])
        let losses = try backend.allocate([batch]), grad = try backend.allocate([batch, classes])
        let rates = [Float](repeating: 0.01, count: members)

        func fused(_ n: Int) throws -> Double {
            try backend.synchronize()
            let t = monotonicNow()
            for _ in 0..<n { _ = try group.trainStep(images: x, labels: y, learningRates: rates) }
            try backend.synchronize()
            return monotonicNow() - t
        }
        func sequential(_ n: Int) throws -> Double {
            try backend.synchronize()
            let t = monotonicNow()
            for (m, o) in zip(models, optimizers) {
                for _ in 0..<n {
                    let logits = m.forward(x, mode: .training)
                    backend.softmaxCrossEntropy(logits: logits, labels: y, losses: losses, gradLogits: grad, gradScale: 1 / Float(batch))
                    m.backward(grad)
                    try o.step(m.trainableTensors, learningRate: 0.01)
                }
            }
            try backend.synchronize()
            return monotonicNow() - t
        }
        _ = try fused(1)
        _ = try sequential(1)
        var bestFused = Double.infinity, bestSequential = Double.infinity
        for _ in 0..<rounds {
            bestFused = min(bestFused, try fused(steps))
            bestSequential = min(bestSequential, try sequential(steps))
        }
        let images = Double(members * steps * batch)
        let shape = spec.cnn.map { "cnn \($0.filters.map(String.init).joined(separator: ","))/\($0.hidden.map(String.init).joined(separator: ","))" }
            ?? "\(spec.family)"
        return Result(shape: shape, members: members, batch: batch,
                      fusedImagesPerSecond: images / bestFused, sequentialImagesPerSecond: images / bestSequential)
    }
}

private func format2(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return "\(r)"
}
