#if canImport(Glibc)
import Glibc
#endif

/// The result of one trial, one line of `journal.jsonl`.
public struct TrialRecord: Codable, Equatable, Sendable {
    /// `running`: a pruned search's trial that started (no values yet) or reached a rung and was
    /// promoted; `pruned`: stopped at its last rung. A trial's last line is its state.
    public enum Status: String, Codable, Sendable { case finished, failed, running, pruned }

    public var id: String
    public var config: TrialConfig
    /// The trial whose conv layers were copied and frozen, nil when trained from scratch.
    public var donor: String?
    public var reuseLayers: Int
    /// Content address of the frozen prefix (`prefixes/<key>.safetensors`).
    public var prefix: String?
    public var status: Status
    public var error: String?
    /// Lowest validation loss over the epochs, and the best validation accuracy (the epoch of
    /// `best.safetensors`).
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    /// Test accuracy of the best checkpoint.
    public var testAccuracy: Double?
    /// Seconds of the training epochs (validation included), over all attempts of the trial.
    public var seconds: Double
    /// Seconds of the trial's process, start to end (data loading, test evaluation), this attempt.
    public var wallSeconds: Double
    public var flopsExecuted: Double
    public var flopsSkipped: Double
    public var epochs: Int
    /// 1 for the first run of the trial; a `--retry-failed` rerun adds one.
    public var attempt: Int
    /// CPU seconds (user + system) of the trial's job, this attempt; nil in older journals.
    public var cpuSeconds: Double? = nil
    /// A pruned search: the validation loss after each epoch trained (null where none), and the
    /// epochs at which its jobs ended (each a rung the pruner decided at, or the budget).
    public var values: [Double?]? = nil
    public var rungs: [Int]? = nil

    enum CodingKeys: String, CodingKey {
        case id, config, donor, reuseLayers = "reuse_layers", prefix, status, error,
             validationLoss = "validation_loss", validationAccuracy = "validation_accuracy",
             testAccuracy = "test_accuracy", seconds, wallSeconds = "wall_seconds",
             flopsExecuted = "flops_executed", flopsSkipped = "flops_skipped", epochs, attempt,
             cpuSeconds = "cpu_seconds", values, rungs
    }
}

/// A search's `journal.jsonl`: one `TrialRecord` per line, a `StudyJournal` (append-only,
/// fsynced, a line cut by a kill left out on reading and cut off before the next append).
public struct SearchJournal {
    public let path: String

    public init(path: String) { self.path = path }

    /// The records in file order (a retried trial appears once per attempt; the last one counts).
    /// Every line is checked as data (`TrialRecord.problems`); all problems are reported at once,
    /// one line each, naming the file and the line.
    public func read() throws -> [TrialRecord] {
        guard FileSystem.kind(of: path) != nil else { return [] }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch let e as SystemCallError {
            throw SearchError("\(path) cannot be read: \(e.message)")
        }
        return try Self.parse(bytes, file: path)
    }

    /// The records of a journal's bytes (`file` names it in errors). A last line without its
    /// newline (cut by a kill) is left out.
    public static func parse(_ bytes: [UInt8], file: String) throws -> [TrialRecord] {
        var records: [TrialRecord] = []
        var problems = StudyDataProblems()
        var known = Set<String>()
        for (lineNumber, line) in StudyJournal.lines(bytes) {
            let record: TrialRecord
            do { record = try StudyData.decode(TrialRecord.self, from: line) } catch {
                problems.add(file, line: lineNumber, "\(error)")
                continue
            }
            let found = record.problems(knownTrials: known)
            if found.isEmpty {
                records.append(record)
                known.insert(record.id)
            }
            for p in found { problems.add(file, line: lineNumber, p) }
        }
        try problems.throwIfAny()
        return records
    }

    /// The last record of each trial.
    public func latest() throws -> [String: TrialRecord] {
        var out: [String: TrialRecord] = [:]
        for r in try read() { out[r.id] = r }
        return out
    }

    /// Appends one line and fsyncs it. A torn last line (no newline) is cut off first.
    public func append(_ record: TrialRecord) throws {
        try StudyJournal.appendLine(SearchJSON.canonical(record), to: path)
    }
}
