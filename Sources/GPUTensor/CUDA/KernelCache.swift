#if canImport(Glibc)
import Glibc
#endif

/// Compiled GPU kernels on disk, so that a process does not run NVRTC again (about 3.5 s for
/// sm_90 per process, and a search starts many). Plain file logic with no CUDA in it, so it is
/// built and tested without the CUDA trait too.
///
/// One file per key: `<directory>/<architecture>-<hash>.cubin`. The file holds the whole key
/// (the kernel source, the compile options, the architecture and the compiler's identity) and a
/// checksum, and is used only when all of it matches, so a hash collision, a truncated or
/// corrupt file, or a file of another Strata is a miss, never a wrong kernel or a crash; the
/// caller compiles and the file is rewritten. Writes are atomic (a temporary file in the same
/// folder, then `rename`), so processes starting together never read half a file.
///
/// ```
/// let cache = KernelCache(directory: KernelCache.directory(environment: env))
/// let key = KernelCache.Key(source: text, options: opts, architecture: "sm_90", compiler: "nvrtc 13.0")
/// if let cubin = cache.load(key) { ... } else { let cubin = compile(); cache.store(key, cubin) }
/// ```
public struct KernelCache: Sendable {
    /// `STRATA_KERNEL_CACHE`: the folder, or `off` for no disk cache.
    public static let variable = "STRATA_KERNEL_CACHE"

    /// nil: no disk cache (every load misses, every store does nothing).
    public let directory: String?

    public init(directory: String?) { self.directory = directory }

    /// `$STRATA_KERNEL_CACHE` (`off` or `0`: none), else `$XDG_CACHE_HOME/strata/kernels`, else
    /// `$HOME/.cache/strata/kernels`; nil when none of them is set.
    public static func directory(environment: [String: String]) -> String? {
        func set(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let chosen = set(variable) { return ["off", "0", "none"].contains(chosen.lowercased()) ? nil : chosen }
        if let xdg = set("XDG_CACHE_HOME") { return xdg + "/strata/kernels" }
        if let home = set("HOME") { return home + "/.cache/strata/kernels" }
        return nil
    }

    /// Everything the compiled code depends on.
    public struct Key: Sendable, Hashable {
        public var source: String
        public var options: [String]
        public var architecture: String
        /// The compiler's identity, e.g. "nvrtc 13.0 (libnvrtc.so.13.0.88, 61235632 bytes)".
        public var compiler: String

        public init(source: String, options: [String], architecture: String, compiler: String) {
            self.source = source; self.options = options; self.architecture = architecture; self.compiler = compiler
        }

        /// The bytes stored in the file and compared on load.
        var bytes: [UInt8] {
            Array("architecture \(architecture)\ncompiler \(compiler)\noptions \(options.joined(separator: " "))\nsource\n\(source)".utf8)
        }

        /// `sm_90-0123456789abcdef.cubin`: the architecture (readable) and a 64-bit hash of the key.
        var fileName: String {
            let safe = architecture.filter { $0.isLetter || $0.isNumber || $0 == "_" }
            let hash = String(KernelCache.checksum(bytes), radix: 16)
            return "\(safe.isEmpty ? "arch" : safe)-\(String(repeating: "0", count: 16 - hash.count))\(hash).cubin"
        }
    }

    /// "STRATAKC" and the format's version.
    static let magic = Array("STRATAKC".utf8) + [1, 0, 0, 0]

    public func path(for key: Key) -> String? { directory.map { $0 + "/" + key.fileName } }

    /// The code stored for `key`, or nil: no such file, unreadable, corrupt, or made for another key.
    public func load(_ key: Key) -> [UInt8]? {
        guard let path = path(for: key), let file = Self.read(path) else { return nil }
        return Self.decode(file, key: key.bytes)
    }

    /// Stores `code` for `key` atomically; false (and nothing left behind) when the folder cannot
    /// be made or written. A cache that cannot be written only costs the next process a compile.
    @discardableResult
    public func store(_ key: Key, _ code: [UInt8]) -> Bool {
        guard let directory, let path = path(for: key), Self.makeDirectories(directory) else { return false }
        return Self.writeAtomically(Self.encode(key: key.bytes, code: code), to: path)
    }

    // MARK: The file format: magic, key length, key, code length, code, checksum of all before it

    static func encode(key: [UInt8], code: [UInt8]) -> [UInt8] {
        var out = magic
        func append(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        append(UInt64(key.count)); out += key
        append(UInt64(code.count)); out += code
        append(checksum(out))
        return out
    }

    static func decode(_ file: [UInt8], key: [UInt8]) -> [UInt8]? {
        var offset = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, count <= file.count - offset else { return nil }
            defer { offset += count }
            return file[offset..<offset + count]
        }
        func word() -> UInt64? { take(8).map { $0.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } } }
        func number() -> Int? { word().flatMap { $0 <= UInt64(Int.max) ? Int($0) : nil } }
        guard take(magic.count).map(Array.init) == magic,
              let keyCount = number(), let storedKey = take(keyCount), storedKey.elementsEqual(key),
              let codeCount = number(), let code = take(codeCount) else { return nil }
        let checked = offset
        guard let sum = word(), offset == file.count, sum == checksum(file[0..<checked]) else { return nil }
        return Array(code)
    }

    /// FNV-1a, 64 bits: to detect a damaged file and name files, not against an adversary (the
    /// whole key is compared on load).
    static func checksum<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    // MARK: Files

    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out += chunk[0..<n]
            if out.count > 1 << 30 { return nil }   // not a kernel cache file
        }
    }

    /// `mkdir -p`; true when `path` is a folder afterwards.
    static func makeDirectories(_ path: String) -> Bool {
        var isFolder: Bool {
            var info = stat()
            return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }
        if isFolder { return true }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            _ = makeDirectories(String(path[..<slash]))
        }
        _ = mkdir(path, 0o755)
        return isFolder
    }

    /// Writes a temporary file next to `path`, then renames it over `path`.
    static func writeAtomically(_ bytes: [UInt8], to path: String) -> Bool {
        let temporary = "\(path).tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        var written = 0
        let ok: Bool = bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        if close(fd) != 0 || !ok || rename(temporary, path) != 0 {
            unlink(temporary)
            return false
        }
        return true
    }
}
