/// One line of a study's `journal.jsonl`, search's and hpo's alike: a typed event about one
/// trial (or the hpo's final training), with the trial's state after it. A trial's lines in
/// order are its history (the pruner's rungs are replayed from their `values`); its last line
/// is its state.
///
/// Events: `proposed` (hpo: the sampler chose its params), `started` (a pruned search: its
/// first job was submitted), `rung` (a job ended at a rung and the pruner let it go on: its
/// next job continues its run), `pruned`, `finished` (its whole budget), `failed`; for the
/// hpo's final training `final_started`, `final_finished`, `final_failed`.
///
/// It is also the trial's record in memory: search and hpo keep each trial's latest event (its
/// `status` says where the trial stands) and write the next one as a copy of it with the new
/// kind and values, so nothing converts between a record and its line.
///
/// Journals written before this format (search's trial-state lines, hpo's trial and final
/// lines, which have no `format` field) are read and converted (`SearchJournal.legacyEvent`,
/// `HPORun.legacyEvent`); a resume appends events after them.
public struct StudyEvent: Codable, Equatable, Sendable {
    /// The format this strata writes; a journal line of a newer one is refused by name.
    public static let currentFormat = 1

    public enum Kind: String, Codable, Sendable {
        case proposed, started, rung, pruned, finished, failed
        case finalStarted = "final_started", finalFinished = "final_finished", finalFailed = "final_failed"

        public var isFinal: Bool { self == .finalStarted || self == .finalFinished || self == .finalFailed }
        /// The trial goes on (or has not started): a resume continues it.
        public var isOpen: Bool { self == .proposed || self == .started || self == .rung }
    }

    public var format = StudyEvent.currentFormat
    public var event: Kind
    /// The trial's id, as its folder `trials/<id>` is named (search: the config's id; hpo:
    /// `trial-NNNN`). A final's names the winner whose hyperparameters it trains with.
    public var trial: String
    /// hpo: the trial's number (from 0, as Optuna's `trial.number`).
    public var number: Int?
    /// search: the architecture and training of the trial.
    public var config: TrialConfig?
    /// hpo: the hyperparameters the sampler proposed.
    public var params: [String: HPOValue]?
    /// search: the trial whose conv layers were copied and frozen, how many, and the content
    /// address of that prefix (`prefixes/<key>.safetensors`).
    public var donor: String?
    public var reuseLayers: Int?
    public var prefix: String?
    /// 1 for the first run of the trial; a `--retry-failed` rerun (or a final's retry) adds one.
    public var attempt: Int?
    /// What the pruner heard after each epoch trained (search: validation loss; hpo: the
    /// minimised objective, -accuracy or loss); null where an epoch had none.
    public var values: [Double?]?
    /// The epochs at which its jobs ended: each a rung the pruner decided at, or the budget.
    public var rungs: [Int]?
    /// Epochs trained (search), or the final's budget.
    public var epochs: Int?
    /// A final that starts continues after this many epochs of its run directory.
    public var fromEpoch: Int?
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    public var testAccuracy: Double?
    public var testLoss: Double?
    /// Seconds of the training epochs (validation included), as its run recorded them.
    public var seconds: Double?
    /// Wall and CPU (user + system) seconds of its jobs, summed over its segments.
    public var wallSeconds: Double?
    public var cpuSeconds: Double?
    public var flopsExecuted: Double?
    public var flopsSkipped: Double?
    public var error: String?
    /// The trial group it trained in for this event (`StudyGroup`); nil when it trained alone.
    public var group: StudyGroup?

    public init(_ event: Kind, trial: String) {
        self.event = event
        self.trial = trial
    }

    enum CodingKeys: String, CodingKey {
        case format, event, trial, number, config, params, donor, reuseLayers = "reuse_layers", prefix, attempt, values,
             rungs, epochs, fromEpoch = "from_epoch", validationLoss = "validation_loss",
             validationAccuracy = "validation_accuracy", testAccuracy = "test_accuracy", testLoss = "test_loss", seconds,
             wallSeconds = "wall_seconds", cpuSeconds = "cpu_seconds", flopsExecuted = "flops_executed",
             flopsSkipped = "flops_skipped", error, group
    }

    /// The one line it is in the journal.
    public var line: String { SearchJSON.canonical(self) }

    /// Appends it to `path` (fsynced, a torn last line cut off first: `StudyJournal`).
    /// A member of a group now training carries its group (`StudyGroup.current`).
    public func append(to path: String) throws {
        var e = self
        if e.group == nil { e.group = StudyGroup.of(trial) }
        try StudyJournal.appendLine(e.line, to: path)
    }

    /// What is wrong with this event as data. `known`: the trials of the journal's earlier
    /// lines (a donor, a final's winner); `trials`: an hpo's trial count, when known.
    public func problems(known: Set<String>, trials: Int? = nil) -> [String] {
        var out: [String] = []
        if format != Self.currentFormat {
            out.append("format \(format) is not one this strata reads (\(Self.currentFormat)): a newer strata wrote it")
            return out
        }
        if let number {
            let limit = trials ?? 1_000_000
            if number < 0 || number >= limit { out.append("trial \(number) is not a trial number (0..<\(limit))") }
            else if trial != StudyEvent.hpoID(number) { out.append("trial \(trial) is not the id of number \(number)") }
        }
        for (name, v) in (params ?? [:]).sorted(by: { $0.key < $1.key }) {
            if case .float(let x) = v, !x.isFinite || abs(x) > StudyData.maxAmount { out.append("params.\(name) \(x) is not finite") }
        }
        if config == nil && params == nil { out.append("names neither a config (search) nor params (hpo)") }
        out += StudyData.Measurements(validationLoss: validationLoss, validationAccuracy: validationAccuracy,
                                      testAccuracy: testAccuracy, seconds: seconds, cpuSeconds: cpuSeconds,
                                      flopsExecuted: flopsExecuted, flopsSkipped: flopsSkipped).problems()
        StudyData.nonNegative(testLoss, "test_loss", into: &out)
        StudyData.seconds(wallSeconds, "wall_seconds", into: &out)
        if let attempt, attempt < 1 || attempt > 1_000_000 { out.append("attempt \(attempt) is not in 1...1000000") }
        // Search's values are losses (>= 0); hpo's may be -accuracy.
        let lowest = config != nil ? 0 : -StudyData.maxAmount
        for (e, v) in (values ?? []).enumerated() {
            if let v, !(v >= lowest && v <= StudyData.maxAmount) { out.append("values[\(e)] \(v) is not a finite \(lowest == 0 ? "non-negative " : "")number") }
        }
        if let rungs, rungs.contains(where: { $0 < 1 || $0 > (values?.count ?? 0) }) {
            out.append("rungs \(rungs) are not epochs 1...\(values?.count ?? 0)")
        }
        if event.isFinal {
            if !known.contains(trial) { out.append("the final names trial \(number.map(String.init) ?? trial), which no earlier line proposed") }
            if let epochs, epochs < 1 || epochs > 1_000_000 { out.append("epochs \(epochs) is not in 1...1000000") }
            if epochs == nil { out.append("a final event has no epochs") }
            if let fromEpoch, fromEpoch < 0 || fromEpoch > (epochs ?? 0) { out.append("from_epoch \(fromEpoch) is not in 0...\(epochs ?? 0)") }
            return out
        }
        if let config {
            out += config.problems()
            if out.isEmpty && trial != config.id { out.append("trial \(trial) is not the id of its config (\(config.id))") }
            let reuse = reuseLayers ?? 0
            if let donor {
                if donor == trial { out.append("trial \(trial) names itself as donor") }
                else if !known.contains(donor) { out.append("donor \(donor) is not a trial of the journal's earlier lines") }
                if reuse < 1 || reuse >= config.convLayers {
                    out.append("reuse_layers \(reuse) does not fit a donor for \(config.convLayers) conv layers")
                }
            } else if reuse != 0 {
                out.append("reuse_layers \(reuse) without a donor")
            }
            if let epochs, epochs < 0 || epochs > config.epochs { out.append("epochs \(epochs) is not in 0...\(config.epochs)") }
            if let values, values.count > config.epochs { out.append("values has \(values.count) epochs, more than \(config.epochs)") }
            if event == .finished && (validationLoss == nil) != (validationAccuracy == nil) {
                out.append("a finished trial has \(validationLoss == nil ? "no validation_loss" : "no validation_accuracy")")
            }
        } else if (event == .finished || event == .pruned) && (values ?? []).isEmpty {
            out.append("a \(event.rawValue) trial has no values")
        }
        return out
    }

    /// An hpo trial's id: its folder's name under `trials/`.
    public static func hpoID(_ number: Int) -> String {
        let digits = String(number)
        return "trial-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

extension StudyEvent {
    /// Where a trial stands after the event (a final's too): `running` until it ends (proposed,
    /// started, promoted at a rung). A worker's `outcome.json` says it with the same words.
    public enum Status: String, Codable, Sendable { case finished, failed, running, pruned }

    public var status: Status {
        switch event {
        case .finished, .finalFinished: return .finished
        case .failed, .finalFailed: return .failed
        case .pruned: return .pruned
        case .proposed, .started, .rung, .finalStarted: return .running
        }
    }

    /// The trial's id (search's config id, hpo's `trial-NNNN`).
    public var id: String { trial }

    /// The trial's next event: this one's fields (its identity, its values so far) under a new kind.
    public func next(_ kind: Kind) -> StudyEvent {
        var e = self
        e.event = kind
        return e
    }
}

extension StudyJournal {
    /// The events of a journal's bytes (`file` names it in errors), every line checked
    /// (`StudyEvent.problems`); all problems are reported at once, one line each, naming the
    /// file and the line. A line without `format` is of the journal format before `StudyEvent`:
    /// `legacy` reads and converts it, or throws why not; it is then checked as every event is.
    static func events(_ bytes: [UInt8], file: String, trials: Int? = nil,
                       legacy: ([UInt8]) throws -> StudyEvent) throws -> [StudyEvent] {
        struct Probe: Decodable { var format: Int? }
        var out: [StudyEvent] = []
        var problems = StudyDataProblems()
        var known = Set<String>()
        for (number, line) in StudyJournal.lines(bytes) {
            let e: StudyEvent
            do {
                if try StudyData.decode(Probe.self, from: line).format == nil {
                    e = try legacy(line)
                } else {
                    e = try StudyData.decode(StudyEvent.self, from: line)
                }
            } catch {
                problems.add(file, line: number, "\(error)")
                continue
            }
            let found = e.problems(known: known, trials: trials)
            for p in found { problems.add(file, line: number, p) }
            if found.isEmpty {
                out.append(e)
                if !e.event.isFinal { known.insert(e.trial) }
            }
        }
        try problems.throwIfAny()
        return out
    }
}
