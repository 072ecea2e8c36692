#if canImport(Glibc)
import Glibc
#endif

/// Decoded datasets (and their seeded splits) kept in this process between runs: a warm search
/// worker (`strata search-worker`) serves many trials on the same data and decodes it once.
///
/// Off until `enable()`: a process that trains once has nothing to keep it for. Safe to share
/// because `ImageDataset`'s pixels and labels are immutable copy-on-write arrays: a run holding
/// the cached value cannot change what the next run gets. An entry is used only while its files
/// look unchanged (size and modification time of the dataset path, its entries and theirs), and
/// at most `limit` datasets are kept (least recently used goes first).
public enum WarmDatasets {
    public struct Counts: Equatable, Sendable {
        public var hits = 0
        public var misses = 0
        public var splitHits = 0
    }

    struct Entry {
        var identity: String
        var value: (train: ImageDataset, test: ImageDataset)
        var used: Int
    }

    nonisolated(unsafe) private static var enabled = false
    nonisolated(unsafe) private static var limit = 2
    nonisolated(unsafe) private static var entries: [String: Entry] = [:]
    nonisolated(unsafe) private static var splits: [SplitKey: (train: ImageDataset, validation: ImageDataset)] = [:]
    nonisolated(unsafe) private static var clock = 0
    nonisolated(unsafe) public private(set) static var counts = Counts()
    private static let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()

    private static func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Keeps up to `limit` decoded datasets from now on.
    public static func enable(limit: Int = 2) {
        locked {
            enabled = true
            self.limit = max(1, limit)
        }
    }

    /// Forgets everything and stops keeping (tests).
    public static func disable() {
        locked {
            enabled = false
            entries.removeAll()
            splits.removeAll()
            counts = Counts()
        }
    }

    public static var isEnabled: Bool { locked { enabled } }

    /// The dataset `decode` returns, from memory when the same (kind, path, options) was decoded
    /// before and its files are unchanged. Decoding happens outside the lock.
    static func cached(kind: DatasetKind, path: String, options: DatasetOptions,
                       decode: () throws -> (train: ImageDataset, test: ImageDataset)) throws -> (train: ImageDataset, test: ImageDataset) {
        guard isEnabled else { return try decode() }
        let key = "\(kind.rawValue) \(DatasetLoader.absolute(path)) \(options)"
        let identity = fileIdentity(path)
        let hit: (train: ImageDataset, test: ImageDataset)? = locked {
            guard var entry = entries[key], entry.identity == identity else { return nil }
            clock += 1
            entry.used = clock
            entries[key] = entry
            counts.hits += 1
            return entry.value
        }
        if let hit { return hit }
        let value = try decode()
        locked {
            counts.misses += 1
            clock += 1
            if let old = entries[key] { forgetSplits(of: old.value.train) }
            entries[key] = Entry(identity: identity, value: value, used: clock)
            while entries.count > limit, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
                forgetSplits(of: oldest.value.value.train)
                entries[oldest.key] = nil
            }
        }
        return value
    }

    /// A split of a cached dataset is recognised by its pixel storage: while the cache holds that
    /// array, no other array can have the same address, so equal addresses mean equal contents.
    struct SplitKey: Hashable {
        var pixels: UInt
        var count: Int
        var name: String
        var fraction: UInt64
        var seed: UInt64
    }

    static func splitKey(_ dataset: ImageDataset, fraction: Double, seed: UInt64) -> SplitKey? {
        guard isEnabled, dataset.count > 0 else { return nil }
        let address = dataset.pixels.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let cached = locked { entries.values.contains { $0.value.train.pixels.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == address } }
        guard cached else { return nil }
        return SplitKey(pixels: address, count: dataset.count, name: dataset.name, fraction: fraction.bitPattern, seed: seed)
    }

    static func split(_ key: SplitKey) -> (train: ImageDataset, validation: ImageDataset)? {
        locked {
            guard let s = splits[key] else { return nil }
            counts.splitHits += 1
            return s
        }
    }

    static func storeSplit(_ key: SplitKey, _ value: (train: ImageDataset, validation: ImageDataset)) {
        locked { if entries.values.contains(where: { $0.value.train.pixels.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == key.pixels }) { splits[key] = value } }
    }

    /// Called with the lock held.
    private static func forgetSplits(of train: ImageDataset) {
        let address = train.pixels.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        splits = splits.filter { $0.key.pixels != address }
    }

    /// Size and modification time of `path`, of each entry in it and of each entry in those.
    static func fileIdentity(_ path: String) -> String {
        func stamp(_ p: String) -> String {
            var s = stat()
            guard stat(p, &s) == 0 else { return "-" }
            return "\(s.st_size):\(s.st_mtim.tv_sec).\(s.st_mtim.tv_nsec)"
        }
        var out = stamp(path)
        guard FileSystem.kind(of: path) == .directory else { return out }
        for name in FileSystem.contents(ofDirectory: path) ?? [] {
            let child = FileSystem.join(path, name)
            out += " \(name)=\(stamp(child))"
            if FileSystem.kind(of: child) == .directory {
                for inner in FileSystem.contents(ofDirectory: child) ?? [] {
                    out += " \(name)/\(inner)=\(stamp(FileSystem.join(child, inner)))"
                }
            }
        }
        return out
    }
}
