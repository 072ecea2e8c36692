#if canImport(Glibc)
import Glibc
#endif

/// The append-only JSON-lines files of a study (search's and hpo's `journal.jsonl`,
/// `sessions.jsonl`): every line is appended and fsynced before the study goes on, so a study
/// killed at any moment (kill -9 included) keeps every event. A last line without its newline was
/// cut by a kill: readers leave it out (`lines`) and the next append cuts it off (`appendLine`).
public enum StudyJournal {
    /// The complete, non-empty lines of a file's bytes with their 1-based line numbers.
    static func lines(_ bytes: [UInt8]) -> [(number: Int, bytes: [UInt8])] {
        var out: [(number: Int, bytes: [UInt8])] = []
        var start = 0, number = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            number += 1
            if i > start { out.append((number, Array(bytes[start..<i]))) }
            start = i + 1
        }
        return out
    }

    /// Appends one line and fsyncs it. A torn last line (no newline) is cut off first.
    static func appendLine(_ text: String, to path: String) throws {
        let line = Array(text.utf8) + [0x0A]
        let created = FileSystem.kind(of: path) == nil
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SearchError("\(path) cannot be opened: errno \(errno)") }
        defer { close(fd) }
        if created {
            // The new file's name must survive a crash too: fsync its folder.
            let folder = open(FileSystem.split(path).directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if folder >= 0 { fsync(folder); close(folder) }
        }
        var end = lseek(fd, 0, SEEK_END)
        if end > 0 {
            // Find the end of the last complete line.
            var last: UInt8 = 0
            _ = pread(fd, &last, 1, end - 1)
            if last != 0x0A {
                let bytes = (try? FileSystem.readFile(path)) ?? []
                let keep = (bytes.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
                guard ftruncate(fd, off_t(keep)) == 0 else { throw SearchError("\(path) cannot be truncated: errno \(errno)") }
                end = off_t(keep)
            }
        }
        try line.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, end + off_t(done))
                if n < 0 { throw SearchError("\(path) write failed: errno \(errno)") }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw SearchError("\(path) fsync failed: errno \(errno)") }
    }
}
