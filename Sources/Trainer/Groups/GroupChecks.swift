import GPUTensor

/// The trial-group equivalence as a self-test check on any backend (`strata selftest` runs it
/// with the cross-device checks, so a GPU session checks cuDNN's grouped convolutions and
/// cuBLAS's batched GEMMs the same way): three members (plain SGD, SGD with momentum and weight
/// decay, Adam) of a seed-000 cnn on 3x12x12 images train 3 steps as one group and each alone
/// from the same weights on the same batches; every member tensor, running statistic and
/// optimizer state must agree.
///
/// Tolerance atol 2e-3, rtol 2e-3: on the GPU the fused and the lone network run different cuDNN
/// algorithms with TF32 inputs (10-bit mantissas, ~5e-4 relative per product) over three steps.
/// On the CPU (FP32) the differences are summation order only: TrialGroupTests holds them to
/// atol 5e-6, rtol 5e-5.
public enum TrialGroupChecks {
    public static var checks: [KernelCheck] {
        [KernelCheck("trial group vs lone runs") { try groupAgainstLoneRuns($0) }]
    }

    static let tolerance = Tolerance(atol: 2e-3, rtol: 2e-3)

    static func groupAgainstLoneRuns(_ backend: Backend) throws -> [CheckResult] {
        var spec = try ModelZoo.spec("cnn", input: ImageShape(channels: 3, height: 12, width: 12), classes: 10)
        spec.cnn = CNNOptions(filters: [8, 16], kernel: 3, hidden: [32])
        let configs: [OptimizerConfig] = [.sgd(learningRate: 0.05, momentum: 0, weightDecay: 0),
                                          .sgd(learningRate: 0.02, momentum: 0.9, weightDecay: 5e-4),
                                          .adam(learningRate: 1e-3)]
        let n = 8, steps = 3
        let batches = try (0..<steps).map { s -> (Tensor, Tensor) in
            let x = try backend.allocate([n] + spec.input.dims)
            backend.fillUniform(x, low: -1, high: 1, seed: 31, counter: UInt64(s))
            return (x, try backend.tensor((0..<n).map { Float(($0 * 7 + s) % 10) }, shape: [n]))
        }
        func model(_ seed: UInt64, maxBatch: Int) throws -> Model {
            let m = try Model(spec: spec)
            try m.prepare(on: backend, maxBatch: maxBatch)
            m.initialize(seed: seed)
            return m
        }
        let members = try configs.indices.map {
            GroupMember(id: "m\($0)", model: try model(UInt64($0 % 2), maxBatch: 1), optimizer: Optimizer(configs[$0], backend: backend))
        }
        let group = try TrialGroup(members: members, backend: backend, maxBatch: n)
        for (x, y) in batches {
            _ = try group.trainStep(images: x, labels: y, learningRates: configs.map(\.learningRate))
        }
        let losses = try backend.allocate([n]), grad = try backend.allocate([n, 10])
        var results: [CheckResult] = []
        for (g, config) in configs.enumerated() {
            let alone = try model(UInt64(g % 2), maxBatch: n), optimizer = Optimizer(config, backend: backend)
            for (x, y) in batches {
                let logits = alone.forward(x, mode: .training)
                backend.softmaxCrossEntropy(logits: logits, labels: y, losses: losses, gradLogits: grad, gradScale: 1 / Float(n))
                alone.backward(grad)
                try optimizer.step(alone.trainableTensors, learningRate: config.learningRate)
            }
            group.extract(member: g)
            let grouped = group.members[g].model.stateDict + group.members[g].optimizer.namedState()
            let expected = alone.stateDict + optimizer.namedState()
            guard grouped.map(\.name) == expected.map(\.name) else {
                results.append(compare("member \(g): the group and the lone run name the same tensors", actual: [0], expected: [1],
                                       tolerance: Tolerance(atol: 0, rtol: 0)))
                continue
            }
            for (a, e) in zip(grouped, expected) {
                results.append(compare("member \(g) (\(config.kind)) \(e.name)", actual: try backend.download(a.tensor),
                                       expected: try backend.download(e.tensor).map(Double.init), tolerance: tolerance))
            }
        }
        return results
    }
}
