#if canImport(Glibc)
import Glibc
#endif

/// A search's `journal.jsonl`: `StudyEvent` lines (append-only, fsynced, a line cut by a kill
/// left out on reading and cut off before the next append: `StudyJournal`), read back as the
/// events themselves (a trial's latest is its state). Lines of the format before `StudyEvent`
/// (one trial state per line) are converted (`legacyEvent`), so an old search resumes.
extension StudyEvent {
    /// search: a trial of more than one conv layer (what reuse can speed up).
    var isMultiLayer: Bool { (config?.convLayers ?? 0) > 1 }
}

public struct SearchJournal {
    public let path: String

    public init(path: String) { self.path = path }

    /// The events in file order (a retried trial appears once per attempt; the last one counts).
    /// Every line is checked as data; all problems are reported at once, one line each, naming
    /// the file and the line.
    public func read() throws -> [StudyEvent] {
        guard FileSystem.kind(of: path) != nil else { return [] }
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path) } catch let e as SystemCallError {
            throw SearchError("\(path) cannot be read: \(e.message)")
        }
        return try Self.parse(bytes, file: path)
    }

    /// The events of a journal's bytes (`file` names it in errors). A last line without its
    /// newline (cut by a kill) is left out.
    public static func parse(_ bytes: [UInt8], file: String) throws -> [StudyEvent] {
        var problems = StudyDataProblems()
        let events = try StudyJournal.events(bytes, file: file, legacy: legacyEvent)
        for e in events where e.config == nil {
            problems.add(file, "an hpo event (\(e.event.rawValue) of \(e.trial)) is no search trial: not a strata search journal")
        }
        try problems.throwIfAny()
        return events
    }

    /// A line of the format before `StudyEvent`: a trial's state, the event's fields under the
    /// same names but `id` (the trial) and `status` (the kind: `running` was a start, or a rung
    /// once it had values).
    static func legacyEvent(_ line: [UInt8]) throws -> StudyEvent {
        struct Old: Decodable { var id: String; var status: StudyEvent.Status; var values: [Double?]? }
        let old = try StudyData.decode(Old.self, from: line)
        guard let open = line.firstIndex(of: UInt8(ascii: "{")) else { throw SearchError("is not valid JSON") }
        let head = #"{"format":\#(StudyEvent.currentFormat),"event":"finished","trial":\#(SearchJSON.canonical(old.id)),"#
        var e = try StudyData.decode(StudyEvent.self, from: Array(head.utf8) + line[(open + 1)...])
        switch old.status {
        case .finished: e.event = .finished
        case .failed: e.event = .failed
        case .pruned: e.event = .pruned
        case .running: e.event = (old.values ?? []).isEmpty ? .started : .rung
        }
        return e
    }

    /// The events that settled a trial (finished, failed, pruned), in file order: one per trial
    /// and attempt.
    public func settled() throws -> [StudyEvent] { try read().filter { $0.status != .running } }

    /// The last event of each trial.
    public func latest() throws -> [String: StudyEvent] {
        var out: [String: StudyEvent] = [:]
        for r in try read() { out[r.id] = r }
        return out
    }

    /// Appends the event and fsyncs it. A torn last line (no newline) is cut off first.
    public func append(_ event: StudyEvent) throws {
        try event.append(to: path)
    }
}
