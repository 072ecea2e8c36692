#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decoded datasets saved once and memory-mapped by later runs (and every trial of a search),
/// so that slow formats (image folders, compressed .npz) are decoded a single time.
///
/// Where: `$STRATA_CACHE_DIR`, else `$XDG_CACHE_HOME/strata/datasets`, else
/// `~/.cache/strata/datasets`; one file `<key>.sdc` per dataset and option set, where the key is
/// the SHA-256 of the kind, absolute path, options and every source file's path, size and
/// modification time (an edited, added or removed file gives a new key; old files stay until
/// deleted by hand). A cache that cannot be written is skipped; one that does not read back
/// exactly is ignored and rewritten.
///
/// File format (version 1), little-endian:
///
///     "STRATADC"  u32 version = 1  u32 H      16 bytes
///     header: H bytes of UTF-8 lines "field value": key, name, shape (C H W), classes, train, test,
///             then one "class <name>" line per class
///     train pixels (train x C*H*W bytes, CHW per image), train labels (train x i32),
///     test pixels, test labels; nothing after.
public enum DatasetCache {
    public static let magic = Array("STRATADC".utf8)
    public static let version: UInt32 = 1
    public static let fileExtension = ".sdc"

    /// The cache directory from the environment.
    public static func directory() -> String {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        if let dir = env("STRATA_CACHE_DIR") { return dir }
        if let dir = env("XDG_CACHE_HOME") { return dir + "/strata/datasets" }
        return (env("HOME") ?? "/tmp") + "/.cache/strata/datasets"
    }

    /// The key of a dataset: SHA-256 over its description and its sources' identities.
    public static func key(description: String, sources: [String]) -> String {
        var h = SHA256()
        h.update(Array((description + "\n").utf8))
        for file in sources {
            var info = stat()
            let identity = stat(file, &info) == 0
                ? "\(file) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)\n" : "\(file) missing\n"
            h.update(Array(identity.utf8))
        }
        return h.finalize()
    }

    public static func path(key: String, in directory: String = directory()) -> String {
        FileSystem.join(directory, String(key.prefix(32)) + fileExtension)
    }

    /// The datasets in the cache file for `key`, memory-mapped; nil when absent or unusable.
    public static func load(key: String, directory: String = directory()) -> (train: ImageDataset, test: ImageDataset)? {
        let file = path(key: key, in: directory)
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 16 else { return nil }
        let size = Int(info.st_size)
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else { return nil }
        defer { munmap(base, size) }
        return try? parse(UnsafeRawBufferPointer(start: base, count: size), file: file, key: key)
    }

    /// Parses a cache file's bytes; `key` (when given) must match the one recorded.
    public static func parse(_ b: UnsafeRawBufferPointer, file: String, key: String? = nil) throws -> (train: ImageDataset, test: ImageDataset) {
        guard b.count >= 16, Array(b[0..<8]) == magic else {
            throw DatasetError(.badMagic, file: file, offset: 0, "is not a Strata dataset cache")
        }
        let version = b.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        let headerLength = Int(b.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian)
        guard version == DatasetCache.version else {
            throw DatasetError(.badHeader, file: file, offset: 8, "cache version \(version) is not \(DatasetCache.version)")
        }
        guard headerLength <= b.count - 16 else { throw DatasetError(.truncated, file: file, offset: 12, "header runs past the end") }
        var fields: [String: String] = [:], classNames: [String] = []
        for line in String(decoding: b[16..<(16 + headerLength)], as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            let value = parts.count > 1 ? String(parts[1]) : ""
            if parts.first == "class" { classNames.append(value) } else if let f = parts.first { fields[String(f)] = value }
        }
        let shape = (fields["shape"] ?? "").split(separator: " ").compactMap { Int($0) }
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 && $0 <= 1 << 14 }), shape[0] <= 4,
              let classes = fields["classes"].flatMap({ Int($0) }), classes > 0, classes == classNames.count,
              let trainCount = fields["train"].flatMap({ Int($0) }), let testCount = fields["test"].flatMap({ Int($0) }),
              trainCount >= 0, testCount >= 0, trainCount <= 1 << 30, testCount <= 1 << 30 else {
            throw DatasetError(.badHeader, file: file, offset: 16, "cache header is incomplete or out of range")
        }
        if let key, fields["key"] != key { throw DatasetError(.mismatch, file: file, offset: 16, "cache key differs") }
        let imageSize = shape[0] * shape[1] * shape[2]
        let (pixelBytes, o1) = (trainCount + testCount).multipliedReportingOverflow(by: imageSize)
        guard !o1, pixelBytes <= DatasetError.maxFileSize, 16 + headerLength + pixelBytes + 4 * (trainCount + testCount) == b.count else {
            throw DatasetError(.truncated, file: file, offset: b.count, "cache size \(b.count) does not match its header")
        }
        var offset = 16 + headerLength
        func part(_ count: Int, _ name: String) throws -> ImageDataset {
            let pixels = Array(b[offset..<(offset + count * imageSize)])
            offset += count * imageSize
            var labels = [Int32](repeating: 0, count: count)
            for i in 0..<count {
                let label = b.loadUnaligned(fromByteOffset: offset + 4 * i, as: Int32.self).littleEndian
                guard label >= 0, Int(label) < classes else {
                    throw DatasetError(.badLabel, file: file, offset: offset + 4 * i, "label \(label) is out of range 0...\(classes - 1)")
                }
                labels[i] = label
            }
            offset += 4 * count
            return ImageDataset(name: name, channels: shape[0], height: shape[1], width: shape[2], pixels: pixels,
                                labels: labels, classes: classes, classNames: classNames)
        }
        let base = fields["name"] ?? "cached"
        return (try part(trainCount, base + "/train"), try part(testCount, base + "/test"))
    }

    /// The bytes of a cache file holding `train` and `test` (same shape and classes).
    public static func encode(train: ImageDataset, test: ImageDataset, key: String) -> [UInt8] {
        let name = train.name.hasSuffix("/train") ? String(train.name.dropLast(6)) : train.name
        var header = "key \(key)\nname \(name)\nshape \(train.channels) \(train.height) \(train.width)\n"
            + "classes \(train.classes)\ntrain \(train.count)\ntest \(test.count)\n"
        for c in train.classNames { header += "class \(c.replacingNewlines())\n" }
        let h = Array(header.utf8)
        var out = magic
        out.reserveCapacity(16 + h.count + train.pixels.count + test.pixels.count + 4 * (train.count + test.count))
        withUnsafeBytes(of: version.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(h.count).littleEndian) { out.append(contentsOf: $0) }
        out += h
        for set in [train, test] {
            out += set.pixels
            for label in set.labels { withUnsafeBytes(of: label.littleEndian) { out.append(contentsOf: $0) } }
        }
        return out
    }

    /// Saves the datasets for `key`; false (and nothing left behind) when it cannot.
    @discardableResult
    public static func store(train: ImageDataset, test: ImageDataset, key: String, directory: String = directory()) -> Bool {
        do {
            try DatasetFetch.makeDirectory(directory)
            try FileSystem.writeAtomically(encode(train: train, test: test, key: key), to: path(key: key, in: directory))
            return true
        } catch {
            return false
        }
    }

    /// `decode()`'s datasets, from the cache when it holds them, else decoded and saved.
    public static func cached(description: String, sources: [String],
                              decode: () throws -> (train: ImageDataset, test: ImageDataset)) throws -> (train: ImageDataset, test: ImageDataset) {
        let key = key(description: description, sources: sources)
        if let hit = load(key: key) { return hit }
        let sets = try decode()
        store(train: sets.train, test: sets.test, key: key)
        return sets
    }
}

private extension String {
    func replacingNewlines() -> String { String(map { $0 == "\n" || $0 == "\r" ? " " : $0 }) }
}
