import ArgumentParser
import GPUTensor
import Trainer

/// `strata bench train`: images/s of full training steps (upload, augmentation, forward, loss,
/// backward, update) on synthetic data, after one warm-up pass.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training-step images/s for a model, batch size and device (synthetic data).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Batch size.")
    var batchSize: Int = 128

    @Option(help: "Timed steps.")
    var steps: Int = 10

    @Option(help: inputShapeHelp)
    var input: String = "cifar"

    @Option(help: "sgd, rmsprop, adam or adamw. sgd by default here, as in the ResNet and VGG papers and PyTorch's benchmarks (train's default is adam, the seed CNN papers').")
    var optimizer: String = "sgd"

    @Option(name: .customLong("lr"), help: "Learning rate (default 1e-4 for every optimizer: small enough that the synthetic data cannot drive the loss to NaN, whose arithmetic would be timed instead).")
    var learningRate: Float = BenchTrain.defaultLearningRate

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Time every backend kernel of the measured epoch and print a per-kernel table (waits for the device after each kernel, so GPU steps get slower).")
    var profile = false

    /// The speed of a step does not depend on the learning rate, but NaN or overflowing values
    /// would (and a run stops on a non-finite loss): a step this small keeps the random-label
    /// synthetic data's loss finite for any model the benchmark builds.
    static let defaultLearningRate: Float = 1e-4

    func validate() throws {
        guard batchSize >= 2 else { throw ValidationError("--batch-size must be at least 2 (batch norm needs two images), got \(batchSize)") }
        guard batchSize <= ConfigValidation.maxBatch else { throw ValidationError("--batch-size must be at most \(ConfigValidation.maxBatch), got \(batchSize)") }
        guard steps >= 1 && steps <= 100_000 else { throw ValidationError("--steps must be in 1...100000, got \(steps)") }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--lr must be a finite number greater than 0, got \(learningRate)") }
        guard ["sgd", "rmsprop", "adam", "adamw"].contains(optimizer) else {
            throw ValidationError("--optimizer must be sgd, rmsprop, adam or adamw, not '\(optimizer)'")
        }
        guard ["cifar", "fashion", "fashion-mnist", "mnist"].contains(input) else { throw ValidationError("--input must be cifar or fashion, not '\(input)'") }
    }

    func run() throws {
        let shape = try parseInputShape(input)
        let unwrapped = try orExit { try deviceOptions.makeBackend(batchSize: batchSize) }
        let profiler = profile ? ProfilingBackend(wrapping: unwrapped) : nil
        let backend: Backend = profiler ?? unwrapped
        let config = TrainConfig(modelName: modelOptions.name,
                                 model: try modelOptions.spec(input: shape, classes: 10),
                                 data: DataConfig(path: "<synthetic>", validationFraction: 0, augment: shape == .cifar),
                                 epochs: 2, batchSize: batchSize, evalBatchSize: batchSize,
                                 optimizer: try optimizerConfig(optimizer, learningRate: learningRate), seed: 1, device: deviceOptions.device,
                                 precision: unwrapped.precision)
        let dataset = ImageDataset.synthetic(count: batchSize * steps, shape: shape, classes: 10, seed: 1)
        let run = try orExit {
            try ConfigValidation.check(config, source: .flags)
            return try TrainingRun(config: config, backend: backend, data: RunData(train: dataset, validation: nil, test: nil))
        }
        // A loss that still diverges (a large --lr) is said as such: the figure would time NaN arithmetic.
        func epoch() throws -> EpochMetrics {
            do { return try run.trainEpoch() } catch let e as DivergenceError {
                throw ValidationError("--lr \(learningRate): \(e.what) on the synthetic data (pass \(e.epoch), step \(e.batch ?? 0)); "
                                      + "a speed figure needs finite values: give a smaller --lr (default \(Self.defaultLearningRate))")
            }
        }
        _ = try orExit { try epoch() }       // warm-up: first-touch of buffers, plans
        profiler?.reset()
        let m = try orExit { try epoch() }
        let stepMs = 1000 * Double(batchSize) / m.imagesPerSecond
        if json {
            print("{\"model\": \"\(modelOptions.name)\", \"device\": \"\(backend.device)\", \"batch_size\": \(batchSize), \"precision\": \"\(unwrapped.precision.rawValue)\", "
                  + "\"images_per_second\": \(m.imagesPerSecond), \"step_ms\": \(stepMs), "
                  + "\"training_gflops\": \(m.trainingFlops / (m.seconds * 1e9))"
                  + (profiler.map { ", \"epoch_seconds\": \(m.seconds), \"profile\": " + profileJSON($0.report()) } ?? "") + "}")
        } else {
            print("\(modelOptions.name) batch \(batchSize) on \(backend.name), \(unwrapped.precision.rawValue): "
                  + "\(formatFixed(m.imagesPerSecond, digits: 1)) images/s, \(formatFixed(stepMs, digits: 1)) ms/step, "
                  + "\(formatFixed(m.trainingFlops / (m.seconds * 1e9), digits: 1)) GFLOP/s")
            if let profiler {
                print("profile of the measured epoch (\(plural(steps, "step")), \(formatFixed(m.seconds * 1000, digits: 1)) ms):")
                print(profiler.table(totalSeconds: m.seconds))
            }
        }
    }
}

/// The profile as a JSON array of {name, calls, seconds, flops}.
private func profileJSON(_ rows: [KernelProfile]) -> String {
    "[" + rows.map { "{\"name\": \"\($0.name)\", \"calls\": \($0.calls), \"seconds\": \($0.seconds), \"flops\": \($0.flops)}" }
        .joined(separator: ", ") + "]"
}
