// File I/O for data readers and checkpoints, routed through one place (`SystemCalls`) so that
// tests can force a failure at any step of an atomic write (STYLE 7).
//
// Plain POSIX calls rather than Foundation: fsync of a file and of its directory are not in
// FoundationEssentials, and the product ships as a static binary without full Foundation.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: its name, the path it was called on and `errno`. Internal; each library
/// family wraps it into its own error (`DatasetError`, `CheckpointError`) with the file name, and
/// where one escapes unwrapped its description still names the path and the reason.
struct SystemCallError: Error, Equatable, CustomStringConvertible {
    var call: String
    var path: String
    var errno: Int32
    /// Set when strata refused the call itself (a FIFO where a file was expected): said instead of strerror.
    var refusal: String?

    init(call: String, path: String, errno: Int32, refusal: String? = nil) {
        self.call = call
        self.path = path
        self.errno = errno
        self.refusal = refusal
    }

    /// "open failed: No such file or directory (errno 2)" (the path left to the wrapper).
    var message: String {
        if let refusal { return "\(call) refused: \(refusal)" }
        let reason = String(cString: strerror(errno))
        return "\(call) failed: \(reason) (errno \(errno))"
    }

    /// "runs/x/summary.json: open failed: No such file or directory (errno 2)".
    var description: String { "\(path): \(message)" }
}

/// The system calls file writing uses; `.posix` calls the C library. Tests substitute a closure
/// to simulate a full disk, a failing fsync or rename.
struct SystemCalls {
    var open: (_ path: String, _ flags: Int32, _ mode: UInt32) -> Int32
    var write: (_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int
    var fsync: (_ fd: Int32) -> Int32
    var close: (_ fd: Int32) -> Int32
    var rename: (_ from: String, _ to: String) -> Int32
    var unlink: (_ path: String) -> Int32

    static let posix = SystemCalls(open: posixOpen, write: posixWrite, fsync: posixFsync,
                                   close: posixClose, rename: posixRename, unlink: posixUnlink)
}

// File-scope wrappers: inside the types above, `open`/`close` would name their members.
private func posixOpen(_ path: String, _ flags: Int32, _ mode: UInt32) -> Int32 { open(path, flags, mode_t(mode)) }
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int { write(fd, bytes.baseAddress, bytes.count) }
private func posixFsync(_ fd: Int32) -> Int32 { fsync(fd) }
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
private func posixRename(_ from: String, _ to: String) -> Int32 { rename(from, to) }
private func posixUnlink(_ path: String) -> Int32 { unlink(path) }
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }

enum FileSystem {
    /// Kind of a path, following symlinks; nil when it does not exist.
    enum Kind { case file, directory, other }

    static func kind(of path: String) -> Kind? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// Names in a directory (without "." and ".."), sorted; nil when it cannot be listed.
    static func contents(ofDirectory path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The whole file. Reads until end of file, so a file that changes size while read is
    /// still read consistently up to where it ended. Only regular files: a FIFO or a device
    /// (`/dev/zero`) is refused at once rather than read without end.
    static func readFile(_ path: String) throws -> [UInt8] {
        // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
        let fd = posixOpen(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: path, errno: errno) }
        defer { _ = posixClose(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemCallError(call: "fstat", path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) != S_IFDIR else { throw SystemCallError(call: "read", path: path, errno: EISDIR) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw SystemCallError(call: "read", path: path, errno: EINVAL,
                                  refusal: "not a regular file (a device, FIFO or socket)")
        }
        var bytes = [UInt8](repeating: 0, count: max(Int(st.st_size), 0))
        var filled = 0
        // Read the size fstat gave; then probe for more in case the file grew meanwhile.
        var probe = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n: Int
            if filled < bytes.count {
                n = bytes.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress! + filled, $0.count - filled) }
            } else {
                n = probe.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress!, $0.count) }
                if n > 0 { bytes.append(contentsOf: probe[..<n]) }
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError(call: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            filled += n
        }
        if filled < bytes.count { bytes.removeSubrange(filled...) }   // the file shrank
        return bytes
    }

    /// Replaces `path` with `bytes` so that a crash at any point leaves either the old file or
    /// the new one, never a mix: write a temporary file in the same directory, fsync it, rename
    /// it over the target, fsync the directory (so the rename itself is durable).
    /// On failure the temporary file is removed and the target is untouched; the error names the
    /// target (the temporary file is an implementation detail).
    static func writeAtomically(_ bytes: [UInt8], to path: String, calls: SystemCalls = .posix) throws {
        try bytes.withUnsafeBytes { try writeAtomically(parts: [$0], to: path, calls: calls) }
    }

    /// `writeAtomically` of the concatenation of `parts`, written from where they lie (a large
    /// buffer need not be copied into one array first).
    static func writeAtomically(parts: [UnsafeRawBufferPointer], to path: String, calls: SystemCalls = .posix) throws {
        let (directory, base) = split(path)
        let temporary = directory + "/." + base + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"

        let fd = calls.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: path, errno: errno) }
        var closed = false
        do {
            for raw in parts {
                var done = 0
                while done < raw.count {
                    let n = calls.write(fd, UnsafeRawBufferPointer(rebasing: raw[done...]))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw SystemCallError(call: "write", path: path, errno: errno)
                    }
                    if n == 0 { throw SystemCallError(call: "write", path: path, errno: EIO) }
                    done += n
                }
            }
            guard calls.fsync(fd) == 0 else { throw SystemCallError(call: "fsync", path: path, errno: errno) }
            closed = true
            // close can report a deferred write error (NFS); then the data is not safe.
            guard calls.close(fd) == 0 else { throw SystemCallError(call: "close", path: path, errno: errno) }
            guard calls.rename(temporary, path) == 0 else { throw SystemCallError(call: "rename", path: path, errno: errno) }
        } catch {
            let saved = (error as? SystemCallError)?.errno ?? 0
            if !closed { _ = calls.close(fd) }
            _ = calls.unlink(temporary)
            errno = saved
            throw error
        }
        // The new file is in place; make the directory entry durable too. Some file systems
        // refuse fsync on a directory (EINVAL); the rename has happened, so that is not an error.
        let dfd = calls.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        guard dfd >= 0 else { throw SystemCallError(call: "open (directory)", path: directory, errno: errno) }
        defer { _ = calls.close(dfd) }
        if calls.fsync(dfd) != 0 && errno != EINVAL && errno != EROFS {
            throw SystemCallError(call: "fsync (directory)", path: directory, errno: errno)
        }
    }

    /// Whether `path` itself (not what it points to) is a symbolic link.
    static func isSymbolicLink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    /// Makes `path` a symbolic link to `target` (relative to its directory) in one rename, so
    /// that the name always exists: a temporary link first, renamed over `path`.
    static func replaceSymbolicLink(at path: String, target: String) throws {
        let (directory, base) = split(path)
        let temporary = directory + "/." + base + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        guard symlink(target, temporary) == 0 else { throw SystemCallError(call: "symlink", path: temporary, errno: errno) }
        guard rename(temporary, path) == 0 else {
            let saved = errno
            unlink(temporary)
            throw SystemCallError(call: "rename", path: path, errno: saved)
        }
    }

    /// Removes `path` and, when it is a folder, everything under it. Symbolic links are removed,
    /// never followed, so nothing outside `path` is touched. Throws naming the first path that
    /// could not be removed.
    static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw SystemCallError(call: "lstat", path: path, errno: errno)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in contents(ofDirectory: path) ?? [] { try removeTree(join(path, name)) }
            guard rmdir(path) == 0 else { throw SystemCallError(call: "rmdir", path: path, errno: errno) }
        } else {
            guard unlink(path) == 0 else { throw SystemCallError(call: "unlink", path: path, errno: errno) }
        }
    }

    /// ("dir", "name") of "dir/name"; "." for a bare name.
    static func split(_ path: String) -> (directory: String, base: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    /// `a/b`, without doubling a trailing slash.
    static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }
}
