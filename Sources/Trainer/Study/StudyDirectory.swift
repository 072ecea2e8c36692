/// A study's folder, search's and hpo's alike: the one place that decides whether a folder may
/// hold the study (`prepare`: created, empty, or already a study of this kind; `--overwrite`
/// removes the study's own names first), takes its lock (one process per study), writes or reads its settings
/// file (the study's marker: `search.json`, `hpo.json`), and names its append-only files
/// (`journal.jsonl`: `StudyEvent` lines; `sessions.jsonl`) and its trials' folders
/// (`trials/<id>/`, each holding `run/`, an ordinary run directory).
public struct StudyDirectory: Sendable {
    public let path: String
    public let study: OutputPolicy.Study

    public init(path: String, study: OutputPolicy.Study) {
        self.path = path
        self.study = study
    }

    public var settingsPath: String { path + "/" + study.markers[0] }
    public var journalPath: String { path + "/journal.jsonl" }
    public var sessionsPath: String { path + "/sessions.jsonl" }
    public var trialsPath: String { path + "/trials" }
    public func trialDirectory(_ id: String) -> String { trialsPath + "/" + id }
    /// The folder holds a study of this kind (its settings file).
    public var holdsStudy: Bool { FileSystem.kind(of: settingsPath) == .file }

    /// How a settings file is read and written (each command keeps its file's encoding).
    public struct SettingsFile<S> {
        public var read: (String) throws -> S
        public var write: (S, String) throws -> Void
        public init(read: @escaping (String) throws -> S, write: @escaping (S, String) throws -> Void) {
            self.read = read
            self.write = write
        }
    }

    /// Makes the folder ready for a new study: the one folder policy of search and hpo
    /// (`OutputPolicy`): created when absent; kept when empty, when it holds only what this
    /// session's engine writes before the settings (its `ray.log`), or when it already holds a
    /// study of this kind (the command judges that one when it opens it); otherwise refused with
    /// one line (a user's `summary.json` is theirs, though a study writes one too), unless
    /// `overwrite`, which first removes the names the study writes (and only those). Returns the
    /// line saying what `--overwrite` removed. The workflows call it before they start an engine
    /// (whose log lies in the folder); `openNew` calls it for everyone else.
    @discardableResult
    public func prepare(overwrite: Bool = false) throws -> String? {
        if !overwrite && FileSystem.kind(of: path) == .directory && OutputPolicy.entries(path).allSatisfy({ $0 == "ray.log" }) {
            return nil
        }
        return try OutputPolicy(overwrite: overwrite).prepareFolder(path, for: study).notice
    }

    /// Opens the folder for a new study of `settings`: the folder policy (`prepare`), the lock, then the
    /// settings file, written when absent. A folder that already holds a study of this kind is
    /// `existing`'s to judge: it returns the settings to go on with, or throws the one line that
    /// refuses it (hpo: pass --resume; search: continues the same search, refuses another).
    func openNew<S>(_ settings: S, file: SettingsFile<S>, existing: (S) throws -> S) throws -> (settings: S, lock: RunLock) {
        try prepare()
        // A study already there is judged before the lock: a refusal says why, not "in use".
        if holdsStudy {
            let kept = try existing(try file.read(settingsPath))
            return (kept, try RunLock(directory: path))
        }
        let lock = try RunLock(directory: path)
        if holdsStudy { return (try existing(try file.read(settingsPath)), lock) }   // written meanwhile
        try file.write(settings, settingsPath)
        return (settings, lock)
    }

    /// Opens a study to continue (`--resume`): the lock, then its settings (`readSettings`).
    func openExisting<S>(file: SettingsFile<S>, problems: (S) -> [String] = { _ in [] }) throws -> (settings: S, lock: RunLock) {
        if !holdsStudy { _ = try readSettings(file: file, problems: problems) }   // the refusal, before any lock file
        let lock = try RunLock(directory: path)
        return (try readSettings(file: file, problems: problems), lock)
    }

    /// The settings of the study the folder holds (it must hold one of this kind), checked by
    /// `problems` (all reported at once, one line each).
    public func readSettings<S>(file: SettingsFile<S>, problems: (S) -> [String] = { _ in [] }) throws -> S {
        guard holdsStudy else {
            throw SearchError("\(path) has no \(study.markers[0]): it is not a strata \(study.name) directory")
        }
        let settings = try file.read(settingsPath)
        var found = StudyDataProblems()
        for p in problems(settings) { found.add(settingsPath, p) }
        try found.throwIfAny()
        return settings
    }
}
