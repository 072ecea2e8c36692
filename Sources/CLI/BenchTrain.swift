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

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Time every backend kernel of the measured epoch and print a per-kernel table (waits for the device after each kernel, so GPU steps get slower).")
    var profile = false

    func run() throws {
        let shape = try parseInputShape(input)
        let unwrapped = try orExit { try deviceOptions.makeBackend(batchSize: batchSize) }
        let profiler = profile ? ProfilingBackend(wrapping: unwrapped) : nil
        let backend: Backend = profiler ?? unwrapped
        let config = TrainConfig(modelName: modelOptions.name,
                                 model: try modelOptions.spec(input: shape, classes: 10),
                                 data: DataConfig(path: "<synthetic>", validationFraction: 0, augment: shape == .cifar),
                                 epochs: 2, batchSize: batchSize, evalBatchSize: batchSize,
                                 optimizer: try optimizerConfig(optimizer), seed: 1, device: deviceOptions.device)
        let dataset = ImageDataset.synthetic(count: batchSize * steps, shape: shape, classes: 10, seed: 1)
        let run = try orExit { try TrainingRun(config: config, backend: backend,
                                               data: RunData(train: dataset, validation: nil, test: nil)) }
        _ = try orExit { try run.trainEpoch() }       // warm-up: first-touch of buffers, plans
        profiler?.reset()
        let m = try orExit { try run.trainEpoch() }
        let stepMs = 1000 * Double(batchSize) / m.imagesPerSecond
        if json {
            print("{\"model\": \"\(modelOptions.name)\", \"device\": \"\(backend.device)\", \"batch_size\": \(batchSize), "
                  + "\"images_per_second\": \(m.imagesPerSecond), \"step_ms\": \(stepMs), "
                  + "\"training_gflops\": \(m.trainingFlops / (m.seconds * 1e9))"
                  + (profiler.map { ", \"epoch_seconds\": \(m.seconds), \"profile\": " + profileJSON($0.report()) } ?? "") + "}")
        } else {
            print("\(modelOptions.name) batch \(batchSize) on \(backend.name): "
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
