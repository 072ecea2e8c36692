import ArgumentParser
import GPUTensor
import Trainer
#if canImport(Glibc)
import Glibc
#endif

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on a dataset's test set.")

    @Argument(help: "A checkpoint (.safetensors) or a run directory (the checkpoint its manifest names, see --checkpoint).")
    var checkpoint: String

    @Option(name: .customLong("checkpoint"), help: "For a run directory: best (default; last when the run has no validation set) or last.")
    var choice: RunDirectory.CheckpointChoice?

    @Option(help: "Dataset directory (default: the one the checkpoint was trained on).")
    var data: String?

    @Option(help: "Batch size.")
    var batchSize: Int = 256

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        try CheckpointArgument(argument: checkpoint, choice: choice).validate()
    }

    func run() throws {
        let backend = try orExit { try deviceOptions.makeBackend() }
        let result = try orExit { () throws -> (String, Evaluation) in
            let (path, label) = try CheckpointArgument(argument: checkpoint, choice: choice).resolve()
            let run = try TrainingRun.forEvaluation(checkpoint: path, dataPath: data, backend: backend,
                                                    batchSize: batchSize)
            guard let test = run.data.test else { throw TrainingError("no test set") }
            return (path + label, try run.evaluate(test))
        }
        print("\(result.0): test accuracy \(formatFixed(result.1.accuracy * 100, digits: 2))%, "
              + "loss \(formatFixed(result.1.loss, digits: 4)) on \(result.1.count) images")
    }
}

extension RunDirectory.CheckpointChoice: ExpressibleByArgument {}

enum FileSystemKind {
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
