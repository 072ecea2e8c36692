import GPUTensor

/// Whole-model checks between devices, on top of the kernel-by-kernel ones of GPUTensor: a few
/// training steps of a small ResNet (option-A shortcuts, batch norm, SGD with momentum) through
/// the real `TrainingRun` on the backend under test and on a reference, from the same weights.
///
/// ```
/// for check in ModelCrossDevice.checks(reference: CPUBackend()) { try check.run(gpu) }
/// ```
public enum ModelCrossDevice {
    public static func checks(reference: Backend) -> [KernelCheck] {
        [KernelCheck("cross-device resnet training") { try resnetSteps($0, reference) }]
    }

    /// ResNet-8 (width 8) on 3x32x32, three SGD steps of 8 images: the epoch's mean loss, then
    /// every tensor of the model (weights, batch-norm statistics) and the optimizer's velocities.
    static func resnetSteps(_ backend: Backend, _ reference: Backend) throws -> [CheckResult] {
        let spec = ModelSpec(family: .resnet, input: .cifar, classes: 10, resnet: ResNetOptions(depth: 8, width: 8))
        let config = TrainConfig(modelName: "resnet8", model: spec,
                                 data: DataConfig(path: "<synthetic>", validationFraction: 0, augment: false),
                                 epochs: 1, batchSize: 8, evalBatchSize: 8,
                                 optimizer: OptimizerConfig(kind: .sgd, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4),
                                 seed: 7, device: "cpu")
        let data = RunData(train: .synthetic(count: 24, shape: .cifar, classes: 10, seed: 7), validation: nil, test: nil)
        // Each run in its backend's precision (a run refuses a backend of another).
        var expectedConfig = config, actualConfig = config
        (expectedConfig.precision, actualConfig.precision) = (reference.precision, backend.precision)
        let expectedRun = try TrainingRun(config: expectedConfig, backend: reference, data: data)
        let actualRun = try TrainingRun(config: actualConfig, backend: backend, data: data)
        // The same starting weights on both (each backend's own fills are checked elsewhere).
        try copyMatchingState(from: expectedRun.model, to: actualRun.model)
        let expectedLoss = try expectedRun.trainEpoch().trainLoss
        let actualLoss = try actualRun.trainEpoch().trainLoss

        // TF32 GEMMs and convolutions on the GPU, compounded over three steps.
        let tolerance = Tolerance(atol: 2e-2, rtol: 2e-2)
        var results = [compare("resnet8 3 SGD steps: mean loss", actual: [Float(actualLoss)], expected: [expectedLoss],
                               tolerance: tolerance)]
        func state(_ run: TrainingRun) -> [(name: String, tensor: Tensor)] {
            run.model.stateDict + run.optimizer.namedState().map { (name: "optimizer." + $0.name, tensor: $0.tensor) }
        }
        let expectedState = state(expectedRun), actualState = state(actualRun)
        guard expectedState.map(\.name) == actualState.map(\.name) else {
            // Cannot happen with one spec; fails loudly rather than comparing the wrong tensors.
            return results + [compare("resnet8: both backends name the same tensors", actual: [0], expected: [1],
                                      tolerance: Tolerance(atol: 0, rtol: 0))]
        }
        for (e, a) in zip(expectedState, actualState) where !e.name.hasSuffix("num_batches_tracked") {
            results.append(compare("resnet8 3 SGD steps: \(e.name)", actual: try backend.download(a.tensor),
                                   expected: try reference.download(e.tensor).map(Double.init), tolerance: tolerance))
        }
        return results
    }
}
