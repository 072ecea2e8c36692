#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one rule for every command that writes (train, grow, search, hpo, predict, prune,
/// reuse-report, data fetch): nothing a user saved is replaced unless they pass `--overwrite`,
/// and then the command says in one line what it removes. Every refusal names the path and the
/// reason (missing parent, a regular file in the way, a dangling symbolic link, a read-only
/// folder), never a raw system error.
///
/// A command asks before it writes anything:
///
///     let policy = OutputPolicy(flag: "--output", overwrite: overwrite)
///     if let notice = try policy.prepareFile("p.npy") { print(notice) }        // a file
///     let folder = try policy.prepareFolder("runs/s1", for: .search)           // a study's folder
///     if let notice = folder.notice { print(notice) }
///
/// Locking stays with `RunLock` (taken by whoever writes the folder, after this check).
public struct OutputPolicy: Sendable {
    /// The flag that named the path, for messages ("--output").
    public var flag: String
    /// Whether the user allowed replacing what is there.
    public var overwrite: Bool

    public init(flag: String = "--output", overwrite: Bool = false) {
        self.flag = flag
        self.overwrite = overwrite
    }

    /// What a command writes into its folder: the file that marks the folder as its own (a
    /// folder holding it is the same kind of study, to be continued), and the names it writes
    /// (what `--overwrite` removes; anything else in the folder is left alone).
    public struct Study: Sendable {
        public var name: String
        /// Paths relative to the folder; any one of them, a regular file, marks the study.
        public var markers: [String]
        public var writes: [String]
        /// Whether the study may share a folder with other files (it then refuses only when one
        /// of its own names is taken); otherwise a non-empty folder must be the study's own.
        public var sharesFolder: Bool

        public init(name: String, markers: [String], writes: [String], sharesFolder: Bool = false) {
            self.name = name
            self.markers = markers
            self.writes = writes
            self.sharesFolder = sharesFolder
        }

        public init(name: String, marker: String, writes: [String], sharesFolder: Bool = false) {
            self.init(name: name, markers: [marker], writes: writes, sharesFolder: sharesFolder)
        }

        public static let search = Study(name: "search", marker: "search.json",
                                         writes: ["search.json", "journal.jsonl", "sessions.jsonl", "summary.json",
                                                  "report.html", "trials", "prefixes", "ray.log", ".search.lock"])
        public static let hpo = Study(name: "hpo", marker: "hpo.json",
                                      writes: ["hpo.json", "journal.jsonl", "sessions.jsonl", "summary.json", "report.html",
                                               "trials", "final", "proxy", "full", "comparison.json", "ray.log"])
        public static let reuseReport = Study(name: "reuse report", marker: "report.json",
                                              writes: ["report.json", "report.txt", "heatmap.svg", "rmse-vs-drop.svg"],
                                              sharesFolder: true)
        /// `strata search --reuse a,b`: one search per strategy in a subfolder, and their report.
        public static let searchComparison = Study(name: "search comparison",
                                                   markers: ["none/search.json", "paper/search.json", "best-prefix/search.json"],
                                                   writes: ["none", "paper", "best-prefix", "report.html"])
        /// `strata hpo --compare-full`: the proxy and the full search, and their comparison.
        public static let hpoComparison = Study(name: "hpo comparison", markers: ["proxy/hpo.json", "full/hpo.json"],
                                                writes: ["proxy", "full", "report.html", "comparison.json"])
    }

    /// The state of a study's folder once prepared.
    public struct Folder: Sendable, Equatable {
        /// The folder did not exist and was created (with its parents).
        public var created = false
        /// It already holds the study's marker: the caller continues (or refuses) that study.
        public var sameStudy = false
        /// What `--overwrite` removed (names relative to the folder).
        public var removed: [String] = []
        /// The line to print when something was removed.
        public var notice: String?
    }

    // MARK: Files

    /// Checks that `path` can be written as a new file: its folder exists and is writable, and
    /// nothing is in its place (or, with `overwrite`, a regular file that may be replaced).
    /// Returns the line to print when an existing file will be replaced.
    public func prepareFile(_ path: String) throws -> String? {
        let (folder, base) = FileSystem.split(path)
        guard !base.isEmpty, base != ".", base != ".." else { throw refusal(path, "names a folder, not a file") }
        if let dangling = Self.danglingLink(path) { throw refusal(path, dangling) }
        switch FileSystem.kind(of: path) {
        case nil:
            try requireWritableFolder(folder, for: path)
            return nil
        case .directory?:
            throw refusal(path, "is a folder; give a file name")
        case .other?:
            throw refusal(path, "exists and is not a regular file (a device, FIFO or socket)")
        case .file?:
            guard overwrite else {
                throw refusal(path, "already exists; pass --overwrite to replace it, or choose another \(flag)")
            }
            try requireWritableFolder(folder, for: path)
            return "--overwrite: replacing \(path) (\(Self.size(of: path)) bytes)"
        }
    }

    // MARK: Folders

    /// Makes `path` ready for `study`: creates it when absent; accepts it when empty or when it
    /// already holds the study's marker (`sameStudy`); otherwise refuses, naming what is in it,
    /// unless `overwrite`, which removes the names the study writes (and only those).
    public func prepareFolder(_ path: String, for study: Study) throws -> Folder {
        var folder = Folder()
        folder.created = try makeFolder(path)
        if folder.created { return folder }
        let entries = Self.entries(path)
        if entries.isEmpty { return folder }
        let same = study.markers.contains { FileSystem.kind(of: FileSystem.join(path, $0)) == .file }
        if study.sharesFolder {
            // Only the study's own names would be replaced; the rest of the folder is left alone.
            let clashes = entries.filter { study.writes.contains($0) }
            if clashes.isEmpty { return folder }
            guard overwrite else {
                throw refusal(path, "already holds \(Self.list(clashes)); pass --overwrite to replace them, or choose another \(flag)")
            }
        } else if !overwrite {
            if same {
                folder.sameStudy = true
                return folder
            }
            throw refusal(path, "is not empty and is not a strata \(study.name) (it holds \(Self.list(entries))); "
                          + "choose another \(flag), or pass --overwrite to remove the \(study.name)'s files from it")
        }
        let doomed = entries.filter { study.writes.contains($0) }
        // Never remove what a live process is writing: its lock is held for as long as it runs.
        let lock = doomed.isEmpty ? nil : try RunLock(directory: path)
        defer { lock?.release() }
        for name in doomed {
            do { try FileSystem.removeTree(FileSystem.join(path, name)) } catch let e as SystemCallError {
                throw refusal(path, "--overwrite cannot remove \(e.path): \(String(cString: strerror(e.errno)))")
            }
        }
        folder.removed = doomed
        folder.notice = doomed.isEmpty ? nil : "--overwrite: removed \(Self.list(doomed, limit: 8)) from \(path)"
        return folder
    }

    /// Checks that a folder can hold what a command writes, creating it (and its parents) when
    /// absent; returns whether it was created. Refuses a regular file or a dangling link in its
    /// place and a folder that cannot be written, naming the path.
    @discardableResult
    public func makeFolder(_ path: String) throws -> Bool {
        if let dangling = Self.danglingLink(path) { throw refusal(path, dangling) }
        switch FileSystem.kind(of: path) {
        case .directory?:
            guard access(path, W_OK | X_OK) == 0 else { throw refusal(path, Self.notWritable(path)) }
            return false
        case .file?:
            throw refusal(path, "exists and is a regular file, not a folder")
        case .other?:
            throw refusal(path, "exists and is not a folder")
        case nil:
            if let blocking = FileSystem.blockingComponent(of: path) { throw refusal(path, "cannot be created: \(blocking)") }
            var prefix = path.hasPrefix("/") ? "" : "."
            for part in path.split(separator: "/") {
                prefix += "/" + part
                if let dangling = Self.danglingLink(prefix) { throw refusal(path, "cannot be created: \(prefix) \(dangling)") }
                if FileSystem.kind(of: prefix) == nil, mkdir(prefix, 0o755) != 0, errno != EEXIST {
                    let e = errno
                    let (parent, _) = FileSystem.split(prefix)
                    let reason = e == EACCES || e == EROFS ? Self.notWritable(parent)
                        : String(cString: strerror(e))
                    throw refusal(path, "cannot be created: \(reason)")
                }
            }
            return true
        }
    }

    // MARK: Helpers

    func refusal(_ path: String, _ reason: String) -> OutputError {
        OutputError(path: path, flag: flag, reason: reason)
    }

    private func requireWritableFolder(_ folder: String, for path: String) throws {
        switch FileSystem.kind(of: folder) {
        case nil:
            if let dangling = Self.danglingLink(folder) { throw refusal(path, "cannot be written: \(folder) \(dangling)") }
            throw refusal(path, "cannot be written: the folder \(folder) does not exist")
        case .file?, .other?:
            throw refusal(path, "cannot be written: \(folder) is not a folder")
        case .directory?:
            guard access(folder, W_OK | X_OK) == 0 else { throw refusal(path, "cannot be written: \(Self.notWritable(folder))") }
        }
    }

    static func notWritable(_ folder: String) -> String {
        var fs = statvfs()
        if statvfs(folder, &fs) == 0, fs.f_flag & UInt(ST_RDONLY) != 0 { return "\(folder) is on a read-only file system" }
        return "\(folder) is not writable (permission denied)"
    }

    /// "is a dangling symbolic link (to X)" when `path` is a link to nothing.
    static func danglingLink(_ path: String) -> String? {
        guard FileSystem.isSymbolicLink(path), FileSystem.kind(of: path) == nil else { return nil }
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        let target = n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        return "is a dangling symbolic link (to \(target))"
    }

    /// A folder's entries, without strata's lock and the temporaries of killed writes.
    static func entries(_ path: String) -> [String] {
        (FileSystem.contents(ofDirectory: path) ?? []).filter { $0 != RunLock.fileName && !RunRecorder.isTemporaryName($0) }
    }

    static func list(_ names: [String], limit: Int = 4) -> String {
        names.prefix(limit).joined(separator: ", ") + (names.count > limit ? " and \(names.count - limit) more" : "")
    }

    static func size(of path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }
}

/// An output a command refuses to write: "--output runs/x: is not empty ...".
public struct OutputError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let flag: String
    public let reason: String
    public init(path: String, flag: String, reason: String) {
        self.path = path
        self.flag = flag
        self.reason = reason
    }
    public var description: String { "\(flag) \(path): \(reason)" }
}
