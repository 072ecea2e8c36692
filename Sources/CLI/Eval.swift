import ArgumentParser
import GPUTensor
import Trainer

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on a dataset's test set.")

    @Argument(help: "A checkpoint (.safetensors) or a run directory (its best, else last, checkpoint).")
    var checkpoint: String

    @Option(help: "Dataset directory (default: the one the checkpoint was trained on).")
    var data: String?

    @Option(help: "Batch size.")
    var batchSize: Int = 256

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
    }

    func run() throws {
        let backend = try orExit { try deviceOptions.makeBackend() }
        let result = try orExit { () throws -> (String, Evaluation) in
            let path = RunDirectory.resolveCheckpoint(checkpoint)
            let run = try TrainingRun.forEvaluation(checkpoint: path, dataPath: data, backend: backend,
                                                    batchSize: batchSize)
            guard let test = run.data.test else { throw TrainingError("no test set") }
            return (path, try run.evaluate(test))
        }
        print("\(result.0): test accuracy \(formatFixed(result.1.accuracy * 100, digits: 2))%, "
              + "loss \(formatFixed(result.1.loss, digits: 4)) on \(result.1.count) images")
    }
}
