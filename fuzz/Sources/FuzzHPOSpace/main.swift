import FuzzSupport
import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// An hpo space file (`hpo --space`): read, then sampled (random and TPE) and applied to a
/// training config as a trial would be.
let path = "/tmp/strata-fuzz-hpo-space-\(getpid()).json"
let base = TrainConfig(modelName: "cnn",
                       model: .cnn(CNNOptions(filters: [4, 6], hidden: [16], dropout: 0.25), input: .cifar, classes: 10),
                       data: DataConfig(kind: "cifar10", path: "/nonexistent", validationFraction: 0.1, augment: false),
                       epochs: 2, batchSize: 16, evalBatchSize: 32, optimizer: .sgd(learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0),
                       schedule: LearningRateSchedule(.cosine(epochs: 2, minimum: 0), warmupEpochs: 0), seed: 1, device: "cpu", reuse: nil)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHPOSpace(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    // FoundationEssentials' FileManager.contents(atPath:) leaks its 4 KiB buffer on an empty
    // file (LeakSanitizer; not Strata's code): an empty file is left out.
    guard size > 0 else { return 0 }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return 0 }
    if let data, size > 0 { _ = write(fd, data, size) }
    close(fd)
    guard let space = try? HPOParameter.readSpace(path) else { return 0 }
    var history: [HPOObservation] = []
    let tpe = TPESampler(seed: 3, startupTrials: 2)
    for t in 0..<4 {
        let sampler: HPOSampler = t < 2 ? UniformSampler(seed: 7) : tpe
        let params = sampler.suggest(space, history: history, trialNumber: t)
        _ = try? HPOParameter.apply(params, to: base)
        history.append(HPOObservation(params: params, value: Double(t)))
    }
    return 0
}

runLibFuzzer { fuzzHPOSpace($0, $1) }
