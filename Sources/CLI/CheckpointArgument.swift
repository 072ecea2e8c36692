import ArgumentParser
import Trainer

/// The checkpoint argument of `eval` and `predict`: a `.safetensors` file, or a run directory
/// and `--checkpoint best|last` (best by default; last when the run has no best). Both commands
/// say which one they used, in the same words.
struct CheckpointArgument {
    var argument: String
    var choice: RunDirectory.CheckpointChoice?

    func validate() throws {
        if choice != nil && !FileSystemKind.isDirectory(argument) {
            throw ValidationError("--checkpoint chooses a checkpoint of a run directory; \(argument) is not a directory")
        }
    }

    /// The file, and how it was chosen: ` (best, epoch 12)`, or "" for a file named directly.
    func resolve() throws -> (path: String, label: String) {
        guard FileSystemKind.isDirectory(argument) else { return (argument, "") }
        let choice = choice ?? .best
        let (path, epoch, taken) = try RunDirectory(path: argument).checkpoint(choice)
        let label = " (\(taken.rawValue)" + (epoch.map { ", epoch \($0)" } ?? "")
            + (taken != choice ? "; the run has no best checkpoint" : "") + ")"
        return (path, label)
    }
}
