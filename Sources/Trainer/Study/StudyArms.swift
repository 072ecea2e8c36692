/// Arms of one study run side by side and compared: `strata search --reuse none,paper,best-prefix`
/// (an arm per reuse strategy) and `strata hpo --compare-full` (the proxy model's search and the
/// full model's). Each arm is a sub-study with its own settings file and journal in
/// `<root>/<arm>`, its folder opened by the study's one rule (`StudyDirectory.prepare`); the root
/// holds only the arms and their comparison (`comparison`'s names: the report, and the
/// command's own comparison files). The arms run one after the other; `--resume` continues each
/// (an arm that finished runs nothing). At the end the terminal gets one table with the same
/// columns for both commands (`table`).
public struct StudyArms: Sendable {
    public let root: String
    public let arms: [String]
    /// Each arm's kind of study (its settings file marks its folder).
    public let study: OutputPolicy.Study
    /// The root's folder rule: its markers are the arms' settings files.
    public let comparison: OutputPolicy.Study

    public func directory(_ arm: String) -> StudyDirectory { StudyDirectory(path: root + "/" + arm, study: study) }

    /// Makes the root and every arm's folder ready for new arms, before any arm runs (a refusal
    /// comes before any work); returns the lines saying what `--overwrite` removed. A root that
    /// already holds these arms is refused with `existing` (nil: each arm's opening judges its
    /// own study, as a search with the same settings continues).
    public func prepare(overwrite: Bool, existing: String? = nil) throws -> [String] {
        let folder = try OutputPolicy(overwrite: overwrite).prepareFolder(root, for: comparison)
        if folder.sameStudy, let existing { throw OutputError(path: root, flag: "--output", reason: existing) }
        var notices = folder.notice.map { [$0] } ?? []
        for arm in arms {
            if let notice = try directory(arm).prepare(overwrite: overwrite) { notices.append(notice) }
        }
        return notices
    }

    /// The arms a folder holds, for `--resume`: those of `candidates`, in their order, whose
    /// folder holds its settings file; none when `root` is itself a study of that kind.
    public static func found(in root: String, candidates: [String], study: OutputPolicy.Study) -> [String] {
        if StudyDirectory(path: root, study: study).holdsStudy { return [] }
        return candidates.filter { StudyDirectory(path: root + "/" + $0, study: study).holdsStudy }
    }

    /// One arm's line of the comparison table.
    public struct Row: Equatable, Sendable {
        public var arm: String
        /// The arm's search time in the command's own sense (search: its sessions' wall seconds;
        /// hpo: its trials' jobs' wall seconds summed), and its trials' CPU seconds.
        public var seconds: Double?
        public var cpuSeconds: Double?
        public var trials: Int
        public var pruned: Int
        public var failed: Int
        /// The best trial's score as the command says it ("val_loss 1.2345", "accuracy 61.20%").
        public var best: String
        /// Test accuracy: of the best trial's checkpoint (search), of the final training (hpo).
        public var testAccuracy: Double?
    }

    /// The comparison table: a header line, then a line per arm, each column padded to its widest cell.
    public static func table(_ rows: [Row]) -> [String] {
        func time(_ s: Double?) -> String { s.map { formatFixed($0, digits: 1) + "s" } ?? "-" }
        let header = ["arm", "search time", "CPU time", "trials (pruned, failed)", "best trial", "test accuracy"]
        let cells = rows.map { r in
            [r.arm, time(r.seconds), time(r.cpuSeconds), "\(r.trials) (\(r.pruned), \(r.failed))", r.best,
             r.testAccuracy.map { formatFixed($0 * 100, digits: 2) + "%" } ?? "-"]
        }
        let widths = header.indices.map { c in ([header] + cells).map { $0[c].count }.max() ?? 0 }
        return ([header] + cells).map { line in
            var text = zip(line, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ")
            while text.hasSuffix(" ") { text.removeLast() }
            return text
        }
    }
}
