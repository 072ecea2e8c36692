#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An open run directory: the one recording seam of every driver (train, grow, later search).
///
/// Opening takes the directory's lock (held until `close` or the process ends), removes the
/// temporary files a killed write left, and then, by `Mode`:
/// - `.new`: the directory must be empty (or absent): work is never replaced silently;
/// - `.overwrite`: the strata files of the old run are removed first (listed in `removed`);
/// - `.resume`: the manifest (or, for a directory written before manifests, its files) says
///   where the run stands; it must be a run of the same `kind`.
///
/// Per epoch a driver appends its metrics line (`appendMetrics`), then `commit`s the checkpoint:
/// the checkpoint goes to a new file `epoch-NNNN.safetensors`, then `manifest.json` is replaced
/// (atomically) to name it as last and, when asked, as best, and only then are `last.safetensors`
/// and `best.safetensors` (symbolic links, for people and older tools) pointed at it and files
/// no longer named removed. A kill at any moment leaves a manifest whose files all exist and
/// agree with each other; the next open repairs the links.
public final class RunRecorder {
    public enum Mode: Sendable { case new, overwrite, resume }

    public let directory: RunDirectory
    public let kind: RunManifest.Kind
    public private(set) var manifest: RunManifest
    /// What `.overwrite` removed (names relative to the directory).
    public private(set) var removed: [String] = []
    /// Temporary files of killed writes that opening removed.
    public private(set) var removedTemporaries: [String] = []
    private var lock: RunLock?
    private var metricsLines: Int

    public init(_ directory: RunDirectory, kind: RunManifest.Kind, mode: Mode) throws {
        self.directory = directory
        self.kind = kind
        let path = directory.path
        switch FileSystem.kind(of: path) {
        case .directory:
            // The output policy's checks: a read-only folder is named as such, not as a failed lock.
            do { try OutputPolicy().makeFolder(path) } catch let e as OutputError {
                throw RunDirectoryError(path: path, reason: "cannot be written: \(e.reason)")
            }
        case nil:
            if mode == .resume {
                throw RunDirectoryError(path: path, reason: "does not exist: there is no run to resume")
            }
            try directory.create()
        case .file, .other:
            throw RunDirectoryError(path: path, reason: "exists and is not a directory")
        }
        if mode == .new {
            // Refuse before touching anything (the lock file included); checked again under the lock.
            try Self.requireEmpty(path, (FileSystem.contents(ofDirectory: path) ?? []).filter {
                $0 != RunLock.fileName && !Self.isTemporaryName($0)
            })
        }
        lock = try RunLock(directory: path)
        manifest = RunManifest(kind: kind)
        metricsLines = 0
        removedTemporaries = try Self.removeTemporaries(in: path)
        let entries = (FileSystem.contents(ofDirectory: path) ?? []).filter { $0 != RunLock.fileName }
        switch mode {
        case .new:
            try Self.requireEmpty(path, entries)
        case .overwrite:
            removed = try Self.removeRunFiles(in: path)
        case .resume:
            try openForResume(entries: entries)
        }
    }

    private static func requireEmpty(_ path: String, _ entries: [String]) throws {
        guard entries.isEmpty else {
            let shown = entries.prefix(3).joined(separator: ", ") + (entries.count > 3 ? ", ..." : "")
            throw RunDirectoryError(path: path, reason: "is not empty (\(shown)): pass --resume \(path) to continue "
                                    + "its run, or --overwrite to replace it")
        }
    }

    /// Releases the lock. Later calls on the recorder throw nothing but write nothing safe.
    public func close() { lock?.release(); lock = nil }

    // MARK: Resume

    private func openForResume(entries: [String]) throws {
        let path = directory.path
        if directory.exists(directory.manifestPath) {
            manifest = try directory.readJSON(RunManifest.self, from: directory.manifestPath)
            for f in manifest.files where !directory.exists(FileSystem.join(path, f)) {
                throw RunDirectoryError(path: directory.manifestPath, reason: "names \(f), which is missing: the directory was changed by hand")
            }
        } else {
            guard directory.exists(directory.configPath) else {
                throw RunDirectoryError(path: path, reason: entries.isEmpty
                    ? "is empty: there is no run to resume"
                    : "is not a strata run directory (no \(RunDirectory.manifestName) or config.json)")
            }
            manifest = try Self.legacyManifest(directory, kind: Self.legacyKind(directory))
        }
        guard manifest.kind == kind else {
            throw RunDirectoryError(path: path, reason: "is a \(manifest.kind.rawValue) run: continue it with "
                                    + "\(manifest.kind.command) --resume \(path)")
        }
        metricsLines = manifest.metricsLines
        try directory.truncateMetrics(toLines: metricsLines)
        try publish()
    }

    /// A manifest for a directory written before manifests: its `last.safetensors` and
    /// `best.safetensors` files, by the epochs their metadata records.
    static func legacyManifest(_ directory: RunDirectory, kind: RunManifest.Kind) throws -> RunManifest {
        var m = RunManifest(kind: kind)
        func ref(_ name: String) throws -> RunManifest.Checkpoint? {
            let p = FileSystem.join(directory.path, name)
            guard FileSystem.kind(of: p) == .file else { return nil }
            let file = try SafeTensors.read(from: p)
            let info = try decodeJSON(CheckpointInfo.self, file.metadata["strata"], file: p, key: "strata")
            return RunManifest.Checkpoint(file: name, epoch: info.epoch, validationAccuracy: info.bestValidationAccuracy)
        }
        m.last = try ref("last.safetensors")
        m.best = kind == .train ? try ref("best.safetensors") : nil
        m.epoch = m.last?.epoch ?? 0
        m.metricsLines = kind == .train ? m.epoch : (try directory.metricsLineCount())
        return m
    }

    /// `train` or `grow` from the shape of an old `config.json`.
    static func legacyKind(_ directory: RunDirectory) throws -> RunManifest.Kind {
        struct Probe: Decodable { var train: TrainConfig?; var modelName: String? }
        let probe = try directory.readJSON(Probe.self, from: directory.configPath)
        return probe.train != nil ? .grow : .train
    }

    // MARK: Recording

    /// The path of the manifest's last checkpoint, if any.
    public var lastCheckpointPath: String? { manifest.last.map { FileSystem.join(directory.path, $0.file) } }

    /// Appends one line to `metrics.jsonl`; it belongs to the run once the next `commit` names it.
    public func appendMetrics<T: Encodable>(_ value: T) throws {
        try directory.appendMetrics(value)
        metricsLines += 1
    }

    /// Rewrites `metrics.jsonl` to exactly `lines` (a resumed grow run restores its history).
    public func replaceMetrics<T: Encodable>(_ lines: [T]) throws {
        try directory.clearMetrics()
        metricsLines = 0
        for l in lines { try appendMetrics(l) }
    }

    /// Makes `file` the checkpoint of `epoch` (and the best one when `best`): see the type's
    /// documentation for the order of writes that keeps the directory consistent.
    public func commit(_ file: SafeTensors, epoch: Int, best: Bool, validationAccuracy: Double?) throws {
        let name = Self.checkpointName(epoch: epoch)
        try file.write(to: FileSystem.join(directory.path, name))
        var next = manifest
        next.epoch = epoch
        next.last = RunManifest.Checkpoint(file: name, epoch: epoch, validationAccuracy: validationAccuracy)
        if best { next.best = next.last }
        next.metricsLines = metricsLines
        next.status = .running
        next.message = nil
        try writeManifest(next)
        try publish()
    }

    /// `commit` with best chosen here: the checkpoint becomes best when its validation accuracy
    /// beats the manifest's best (strictly: the earlier epoch keeps a tie). For drivers whose
    /// epochs belong to different models (grow; search trials).
    public func commit(_ file: SafeTensors, epoch: Int, validationAccuracy: Double?) throws {
        let best = validationAccuracy.map { $0 > (manifest.best?.validationAccuracy ?? -1) } ?? false
        try commit(file, epoch: epoch, best: best, validationAccuracy: validationAccuracy)
    }

    /// Records that `summary.json` is written and the run is complete.
    public func complete() throws {
        var next = manifest
        next.status = .complete
        next.summary = "summary.json"
        next.metricsLines = metricsLines
        try writeManifest(next)
    }

    /// Records a divergence; returns the error with the last good checkpoint's epoch filled in.
    public func diverged(_ error: DivergenceError) -> DivergenceError {
        var e = error
        e.lastGoodEpoch = manifest.last?.epoch
        var next = manifest
        next.status = .diverged
        next.message = e.description
        try? writeManifest(next)
        return e
    }

    private func writeManifest(_ next: RunManifest) throws {
        try directory.writeJSON(next, to: directory.manifestPath)
        manifest = next
    }

    /// Points the `last`/`best` links at the manifest's files and removes checkpoint files it
    /// no longer names. Safe to redo at any time (the next open does, after a kill).
    private func publish() throws {
        let path = directory.path
        for (link, ref) in [("last.safetensors", manifest.last), ("best.safetensors", manifest.best)] {
            let linkPath = FileSystem.join(path, link)
            guard let ref else {
                if FileSystem.isSymbolicLink(linkPath) { unlink(linkPath) }
                continue
            }
            if ref.file == link { continue }   // a file from before manifests, named by the manifest itself
            do { try FileSystem.replaceSymbolicLink(at: linkPath, target: ref.file) } catch let e as SystemCallError {
                throw RunDirectoryError(path: linkPath, reason: "cannot be updated: \(e.message)")
            }
        }
        let keep = manifest.files
        for name in FileSystem.contents(ofDirectory: path) ?? [] where Self.isCheckpointName(name) && !keep.contains(name) {
            unlink(FileSystem.join(path, name))
        }
    }

    // MARK: Names

    static func checkpointName(epoch: Int) -> String {
        let digits = String(epoch)
        return "epoch-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + ".safetensors"
    }

    static func isCheckpointName(_ name: String) -> Bool {
        name.hasPrefix("epoch-") && name.hasSuffix(".safetensors")
            && Int(name.dropFirst(6).dropLast(12)) != nil
    }

    /// `.NAME.tmp-PID-RAND`, the temporary file of `FileSystem.writeAtomically`.
    static func isTemporaryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8), marker = Array(".tmp-".utf8)
        guard bytes.first == UInt8(ascii: "."), bytes.count > marker.count + 3 else { return false }
        guard let at = stride(from: bytes.count - marker.count, through: 1, by: -1).first(where: {
            Array(bytes[$0..<($0 + marker.count)]) == marker
        }) else { return false }
        let parts = bytes[(at + marker.count)...].split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { (48...57).contains($0) } }
    }

    /// Removes temporary files of writes a kill interrupted (the caller holds the lock, so no
    /// live writer owns them).
    static func removeTemporaries(in path: String) throws -> [String] {
        var removed: [String] = []
        for name in FileSystem.contents(ofDirectory: path) ?? [] where isTemporaryName(name) {
            if unlink(FileSystem.join(path, name)) == 0 { removed.append(name) }
        }
        return removed
    }

    /// The files a strata run writes (and `baseline/`, a grow run's nested train run).
    static func isRunFile(_ name: String) -> Bool {
        ["config.json", "metrics.jsonl", "summary.json", RunDirectory.manifestName, "last.safetensors",
         "best.safetensors", "growth.svg"].contains(name) || isCheckpointName(name)
    }

    static func removeRunFiles(in path: String) throws -> [String] {
        var removed: [String] = []
        for name in FileSystem.contents(ofDirectory: path) ?? [] {
            let p = FileSystem.join(path, name)
            if name == "baseline", FileSystem.kind(of: p) == .directory {
                let inner = try removeRunFiles(in: p) + (try removeTemporaries(in: p))
                removed += inner.map { "baseline/" + $0 }
                unlink(FileSystem.join(p, RunLock.fileName))
                if rmdir(p) == 0 { removed.append("baseline/") }
            } else if isRunFile(name) {
                guard unlink(p) == 0 else {
                    throw RunDirectoryError(path: p, reason: "cannot be removed: \(SystemCallError(call: "unlink", path: p, errno: errno).message)")
                }
                removed.append(name)
            }
        }
        return removed
    }
}
