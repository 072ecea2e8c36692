#if canImport(Glibc)
import Glibc
#endif

/// The state of one search trial after a journal event (`StudyEvent`; the older journal format
/// held one of these per line).
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

extension TrialRecord {
    /// Its journal line: the event that brought the trial to this state.
    public var studyEvent: StudyEvent {
        let kind: StudyEvent.Kind
        switch status {
        case .finished: kind = .finished
        case .failed: kind = .failed
        case .pruned: kind = .pruned
        case .running: kind = (values ?? []).isEmpty ? .started : .rung
        }
        var e = StudyEvent(kind, trial: id)
        e.config = config
        e.donor = donor
        e.reuseLayers = reuseLayers
        e.prefix = prefix
        e.error = error
        e.validationLoss = validationLoss
        e.validationAccuracy = validationAccuracy
        e.testAccuracy = testAccuracy
        e.seconds = seconds
        e.wallSeconds = wallSeconds
        e.flopsExecuted = flopsExecuted
        e.flopsSkipped = flopsSkipped
        e.epochs = epochs
        e.attempt = attempt
        e.cpuSeconds = cpuSeconds
        e.values = values
        e.rungs = rungs
        return e
    }

    /// The trial's state after a (checked) search event; nil for an event that is no search
    /// trial's (an hpo's).
    public init?(_ e: StudyEvent) {
        guard let config = e.config, !e.event.isFinal else { return nil }
        let status: Status
        switch e.event {
        case .finished: status = .finished
        case .failed: status = .failed
        case .pruned: status = .pruned
        default: status = .running
        }
        self.init(id: e.trial, config: config, donor: e.donor, reuseLayers: e.reuseLayers ?? 0, prefix: e.prefix, status: status,
                  error: e.error, validationLoss: e.validationLoss, validationAccuracy: e.validationAccuracy,
                  testAccuracy: e.testAccuracy, seconds: e.seconds ?? 0, wallSeconds: e.wallSeconds ?? 0,
                  flopsExecuted: e.flopsExecuted ?? 0, flopsSkipped: e.flopsSkipped ?? 0, epochs: e.epochs ?? 0,
                  attempt: e.attempt ?? 1, cpuSeconds: e.cpuSeconds, values: e.values, rungs: e.rungs)
    }
}

/// A search's `journal.jsonl`: `StudyEvent` lines (append-only, fsynced, a line cut by a kill
/// left out on reading and cut off before the next append: `StudyJournal`), read back as each
/// trial's `TrialRecord` after each event. Lines of the format before `StudyEvent` (one
/// `TrialRecord` per line) are read as they were, so an old search resumes.
public struct SearchJournal {
    public let path: String

    public init(path: String) { self.path = path }

    /// The records in file order (a retried trial appears once per attempt; the last one counts).
    /// Every line is checked as data; all problems are reported at once, one line each, naming
    /// the file and the line.
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
        var problems = StudyDataProblems()
        var records: [TrialRecord] = []
        let events = try StudyJournal.events(bytes, file: file) { line in
            // The format before StudyEvent: one TrialRecord per line.
            try StudyData.decode(TrialRecord.self, from: line).studyEvent
        }
        for e in events {
            if let r = TrialRecord(e) { records.append(r) } else {
                problems.add(file, "an hpo event (\(e.event.rawValue) of \(e.trial)) is no search trial: not a strata search journal")
            }
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

    /// Appends the record's event and fsyncs it. A torn last line (no newline) is cut off first.
    public func append(_ record: TrialRecord) throws {
        try record.studyEvent.append(to: path)
    }
}
