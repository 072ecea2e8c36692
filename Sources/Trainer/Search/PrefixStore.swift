#if canImport(Glibc)
import Glibc
#endif

/// Frozen prefixes stored by content: `prefixes/<key>.safetensors` holds the first k conv layers
/// of a donor's best checkpoint, under a key made of what determines those weights and what they
/// expect (the prefix's model spec, the data and split, the normalisation, and the donor's
/// recipe). Every trial that freezes the same prefix reads the same file, and the file outlives
/// the donor's run directory.
public struct PrefixStore {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    struct Key: Codable {
        var model: String
        var filters: [Int]
        var kernel: Int
        var padding: String
        var data: DataConfig
        var splitSeed: UInt64
        /// Per-channel statistics of the training split: fixed by `data` and `splitSeed`.
        var normalization: String
        var donor: TrialConfig
    }

    public static func key(donor: TrialConfig, layers: Int, data: DataConfig) -> String {
        let k = Key(model: donor.model, filters: Array(repeating: donor.filters, count: layers), kernel: donor.kernel,
                    padding: "same", data: data, splitSeed: donor.seed, normalization: "train-split channel mean/std",
                    donor: donor)
        return fnv1a64Hex(SearchJSON.canonical(k))
    }

    public func path(for key: String) -> String { directory + "/\(key).safetensors" }

    /// The prefix's cached outputs (`ActivationCache`'s file; `TrialJob.reuse` names it so).
    public func activationsPath(for key: String) -> String { directory + "/\(key).activations" }

    /// Stores the first `layers` conv layers of `checkpoint` under `key` (once) and returns the path.
    /// Marks the key's files as used now (what `evict` keeps longest).
    public func store(key: String, layers: Int, from checkpoint: String) throws -> String {
        let target = path(for: key)
        touch(activationsPath(for: key))
        if FileSystem.kind(of: target) == .file { touch(target); return target }
        let file = try SafeTensors.read(from: checkpoint)
        // cnn names: conv i is `features.{3i}` (ModelSpec.CNNOptions).
        let names = Set((0..<layers).flatMap { ["features.\(3 * $0).weight", "features.\(3 * $0).bias"] })
        var prefix = SafeTensors(tensors: file.tensors.filter { names.contains($0.name) },
                                 metadata: ["strata-prefix": SearchJSON.canonical(["key": key, "source": checkpoint])])
        guard prefix.tensors.count == names.count else {
            throw SearchError("\(checkpoint) lacks some of \(names.sorted().joined(separator: ", "))")
        }
        prefix.tensors.sort { $0.name < $1.name }
        try prefix.write(to: target)
        return target
    }
}

/// What the prefix store holds on disk and what its budget removed: the search summary's figures.
public struct PrefixStoreUsage: Codable, Equatable, Sendable {
    /// The budget in bytes; nil when none was set.
    public var budgetBytes: Int?
    /// Bytes of prefixes and activation files on disk now.
    public var keptBytes: Int
    public var keptFiles: Int
    /// Bytes and files removed by the budget so far (every session of the search).
    public var evictedBytes: Int
    public var evictedFiles: Int

    enum CodingKeys: String, CodingKey {
        case budgetBytes = "budget_bytes", keptBytes = "kept_bytes", keptFiles = "kept_files",
             evictedBytes = "evicted_bytes", evictedFiles = "evicted_files"
    }
}

extension PrefixStore {
    /// The sensible default of a search's disk budget for its prefixes and activation caches.
    public static let defaultBudget = 4 << 30

    /// One line of `evictions.jsonl`: a file the budget removed.
    struct Eviction: Codable {
        var file: String
        var bytes: Int
    }

    var evictionLogPath: String { directory + "/evictions.jsonl" }

    /// The store's files (prefixes and activation caches), with their key, size and last use.
    func files() -> [(path: String, key: String, activations: Bool, bytes: Int, used: Double)] {
        (FileSystem.contents(ofDirectory: directory) ?? []).compactMap { name in
            let activations = name.hasSuffix(".activations")
            guard activations || name.hasSuffix(".safetensors") else { return nil }
            let path = FileSystem.join(directory, name)
            var s = stat()
            guard stat(path, &s) == 0, (s.st_mode & S_IFMT) == S_IFREG else { return nil }
            let key = String(name[..<name.lastIndex(of: ".")!])
            return (path, key, activations, Int(s.st_size), Double(s.st_mtim.tv_sec) + Double(s.st_mtim.tv_nsec) / 1e9)
        }
    }

    /// Bytes on disk and evicted so far, against `budget`.
    public func usage(budget: Int? = nil) -> PrefixStoreUsage {
        let kept = files()
        let evicted = ((try? FileSystem.readFile(evictionLogPath)) ?? []).split(separator: 10).compactMap {
            try? SearchJSON.decode(Eviction.self, from: Array($0), file: evictionLogPath)
        }
        return PrefixStoreUsage(budgetBytes: budget, keptBytes: kept.reduce(0) { $0 + $1.bytes }, keptFiles: kept.count,
                                evictedBytes: evicted.reduce(0) { $0 + $1.bytes }, evictedFiles: evicted.count)
    }

    /// Removes files until the store holds at most `budget` bytes, never those of a key in
    /// `needed` (the prefixes of trials running or scheduled). Activation caches go first, least
    /// recently used first (a trial that needs one again recomputes it in its first epoch), then
    /// prefixes (stored again from the donor's checkpoint when a trial needs one). Each removal is
    /// logged in `evictions.jsonl`, so `usage` counts them across sessions. Returns what this
    /// call removed.
    @discardableResult
    public func evict(budget: Int, needed: Set<String>) throws -> (files: Int, bytes: Int) {
        let all = files()
        var total = all.reduce(0) { $0 + $1.bytes }
        guard total > budget else { return (0, 0) }
        let candidates = all.filter { !needed.contains($0.key) }
            .sorted { ($0.activations ? 0 : 1, $0.used, $0.path) < ($1.activations ? 0 : 1, $1.used, $1.path) }
        var removed = (files: 0, bytes: 0)
        var log: [UInt8] = []
        for file in candidates where total > budget {
            guard unlink(file.path) == 0 else {
                throw SearchError("cannot remove \(file.path) to keep the prefix store within its budget: \(String(cString: strerror(errno)))")
            }
            total -= file.bytes
            removed.files += 1
            removed.bytes += file.bytes
            log += Array((SearchJSON.canonical(Eviction(file: FileSystem.split(file.path).base, bytes: file.bytes)) + "\n").utf8)
        }
        if !log.isEmpty { try appendBytes(log, to: evictionLogPath) }
        return removed
    }

    /// Sets `path`'s modification time to now, when it exists.
    func touch(_ path: String) {
        _ = utimensat(AT_FDCWD, path, nil, 0)
    }
}

private func appendBytes(_ bytes: [UInt8], to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SearchError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var rest = bytes[...]
    while !rest.isEmpty {
        let n = rest.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw SearchError("cannot write \(path): \(String(cString: strerror(errno)))") }
        rest = rest.dropFirst(n)
    }
}
