#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An exclusive `flock` on `DIR/.strata.lock`, held for the life of a run so that two processes
/// never write one directory (their metrics interleaved, epochs 1,1,2,2,...). The kernel drops
/// it when the process dies, however it dies, so a killed run never leaves a stale lock.
/// The file holds the owner's pid, for the message the second process prints.
final class RunLock {
    static let fileName = ".strata.lock"
    private var fd: Int32

    /// Takes the lock or throws naming the directory and the holder's pid.
    init(directory: String) throws {
        let path = FileSystem.join(directory, Self.fileName)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RunDirectoryError(path: directory, reason: "cannot be locked: \(SystemCallError(call: "open \(Self.fileName)", path: path, errno: errno).message)")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let saved = errno
            let holder = Self.readPid(fd)
            close(fd)
            if saved == EWOULDBLOCK {
                throw RunDirectoryError(path: directory, reason: "is in use by another strata process"
                                        + (holder.map { " (pid \($0))" } ?? "") + "; wait for it to end or pick another directory")
            }
            throw RunDirectoryError(path: directory, reason: "cannot be locked: \(SystemCallError(call: "flock", path: path, errno: saved).message)")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    private static func readPid(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[..<n].filter { (48...57).contains($0) }, as: UTF8.self))
    }

    /// Releases the lock (also done by `deinit` and by the process's exit).
    func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
