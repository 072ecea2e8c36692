/// `manifest.json`: the one file that says what a run directory holds. It is written after
/// everything it names (metrics lines, checkpoint files, summary), atomically, so a reader that
/// goes through it never sees a best, last and summary that disagree, whatever moment a kill hit.
///
/// ```
/// {"format": "strata-run-1", "kind": "train", "status": "running", "epoch": 3,
///  "last": {"file": "epoch-0003.safetensors", "epoch": 3},
///  "best": {"file": "epoch-0002.safetensors", "epoch": 2, "validationAccuracy": 0.61},
///  "metricsLines": 3}
/// ```
public struct RunManifest: Codable, Equatable, Sendable {
    /// What wrote the directory: `strata train` or `strata grow` (and, later, `strata search`).
    public enum Kind: String, Codable, Sendable {
        case train, grow, search
        /// The command that continues such a run.
        public var command: String { "strata \(rawValue)" }
    }

    public enum Status: String, Codable, Sendable {
        /// Epochs are being added (or the run was killed: `--resume` continues it).
        case running
        /// Every epoch and the summary are written.
        case complete
        /// The loss became non-finite; `last` is the last good checkpoint.
        case diverged
        /// Stopped by SIGINT/SIGTERM (`message` says which); `--resume` continues from `last`.
        case interrupted
    }

    /// A checkpoint file of the directory (a plain name, no path) and the epoch it holds.
    public struct Checkpoint: Codable, Equatable, Sendable {
        public var file: String
        public var epoch: Int
        public var validationAccuracy: Double?
    }

    public var format = "strata-run-1"
    public var kind: Kind
    public var status: Status
    /// Epochs completed and checkpointed.
    public var epoch: Int
    public var last: Checkpoint?
    /// The checkpoint of the best validation accuracy (nil without a validation set).
    public var best: Checkpoint?
    /// Lines of `metrics.jsonl` that belong to the checkpointed epochs (a resume cuts the rest).
    public var metricsLines: Int
    /// `summary.json`, once written.
    public var summary: String?
    /// Why the run stopped, when `status` is `diverged` or `interrupted`.
    public var message: String?

    public init(kind: Kind) {
        self.kind = kind
        status = .running
        epoch = 0
        metricsLines = 0
    }

    /// Every checkpoint file the manifest names.
    public var files: Set<String> { Set([last?.file, best?.file].compactMap { $0 }) }
}

extension RunRecorder {
    /// Records that a signal stopped the run (manifest status `interrupted`; `last` stays the
    /// checkpoint a resume continues from); returns the error with the resume command and the
    /// last checkpoint's epoch filled in. The next commit marks the run `running` again.
    public func interrupted(_ error: InterruptedError) -> InterruptedError {
        var e = error
        e.resume = e.resume ?? "\(manifest.kind.command) --resume \(directory.path)"
        e.detail = e.detail ?? (manifest.last.map { "the last checkpoint is epoch \($0.epoch)" } ?? "no epoch was checkpointed yet")
        var next = manifest
        next.status = .interrupted
        next.message = "interrupted by \(e.signalName)"
        // Best effort: a manifest that cannot be written stays `running`, which resumes the same way.
        try? directory.writeJSON(next, to: directory.manifestPath)
        return e
    }
}

extension RunDirectory {
    /// Which checkpoint of a run to use.
    public enum CheckpointChoice: String, CaseIterable, Sendable {
        case best, last
    }

    /// The checkpoint `choice` of this run directory, by its manifest (or, for a directory from
    /// before manifests, `best.safetensors`/`last.safetensors`). `best` falls back to last when
    /// the run has no validation set; the result says which was taken.
    public func checkpoint(_ choice: CheckpointChoice) throws -> (path: String, epoch: Int?, taken: CheckpointChoice) {
        if exists(manifestPath) {
            let m = try readJSON(RunManifest.self, from: manifestPath)
            if choice == .best, let b = m.best { return (FileSystem.join(path, b.file), b.epoch, .best) }
            if let l = m.last { return (FileSystem.join(path, l.file), l.epoch, .last) }
            throw RunDirectoryError(path: path, reason: "has no checkpoint yet (\(RunDirectory.manifestName) names none)")
        }
        if choice == .best, exists(bestCheckpointPath) { return (bestCheckpointPath, nil, .best) }
        if exists(lastCheckpointPath) { return (lastCheckpointPath, nil, .last) }
        throw RunDirectoryError(path: path, reason: "has no checkpoint (no \(RunDirectory.manifestName), "
                                + "best.safetensors or last.safetensors)")
    }
}
