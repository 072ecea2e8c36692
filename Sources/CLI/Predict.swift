import ArgumentParser
import GPUTensor
import Trainer

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's logits, predicted and true labels for every test image.",
        discussion: """
        The output's extension chooses the format: .csv (index,label,predicted,logit_0,...) or .npy \
        (a structured array with fields logits (float32, one per class), predicted and label (int64); \
        np.load("p.npy")["logits"]). Images are in the dataset's order and normalised with the \
        checkpoint's statistics, as strata eval does.

        Example:
          strata predict runs/cnn-s0 --output runs/cnn-s0/test.npy
        """)

    @Argument(help: "A checkpoint (.safetensors) or a run directory (the checkpoint its manifest names, see --checkpoint).")
    var checkpoint: String

    @Option(name: .customLong("checkpoint"), help: "For a run directory: best (default; last when the run has no validation set) or last.")
    var choice: RunDirectory.CheckpointChoice?

    @Option(help: "Dataset directory whose test set is predicted (default: the one the checkpoint was trained on).")
    var data: String?

    @Option(help: "Where to write: FILE.csv or FILE.npy.")
    var output: String

    @Option(help: "Batch size.")
    var batchSize: Int = 256

    @Flag(help: "Replace --output when it exists.")
    var overwrite = false

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard output.hasSuffix(".csv") || output.hasSuffix(".npy") else {
            throw ValidationError("--output must end in .csv or .npy, not '\(output)'")
        }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        try CheckpointArgument(argument: checkpoint, choice: choice).validate()
    }

    func run() throws {
        let backend = try orExit { try deviceOptions.makeBackend() }
        // Checked before the work, so that a refusal costs nothing; the write replaces atomically.
        let notice = try orExit { try OutputPolicy(overwrite: overwrite).prepareFile(output) }
        let (path, predictions) = try orExit { () throws -> (String, Predictions) in
            let (path, label) = try CheckpointArgument(argument: checkpoint, choice: choice).resolve()
            let run = try TrainingRun.forEvaluation(checkpoint: path, dataPath: data, backend: backend, batchSize: batchSize)
            guard let test = run.data.test else { throw TrainingError("no test set") }
            let predictions = try run.predict(test)
            if let notice { print(notice) }
            try predictions.write(to: output)
            return (path + label, predictions)
        }
        print("\(path): \(predictions.count) predictions written to \(output) "
              + "(accuracy \(formatFixed(predictions.accuracy * 100, digits: 2))%)")
    }
}
