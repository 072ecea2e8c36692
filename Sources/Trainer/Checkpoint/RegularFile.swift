// Bounded reads for files a user names: a checkpoint, a dataset file, a config file. Only
// regular files are read, so `/dev/zero`, a FIFO or a socket get a clear error instead of a read
// without end (or an open that waits for a writer), and sizes are checked before memory is
// reserved for them.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file was not read, for a person; the readers wrap it with the file name.
struct FileRefusal: Error, Equatable, CustomStringConvertible {
    var detail: String
    var isMissing = false
    var description: String { detail }
}

/// An open regular file of known size, read in exact pieces.
final class RegularFile {
    let path: String
    let size: Int
    private let fd: Int32
    private var position = 0

    /// Opens `path` for reading; refuses what is not a regular file and files above `limit` bytes.
    init(_ path: String, limit: Int) throws {
        // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let e = errno
            throw FileRefusal(detail: SystemCallError(call: "open", path: path, errno: e).message, isMissing: e == ENOENT)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw FileRefusal(detail: SystemCallError(call: "fstat", path: path, errno: e).message)
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR:
            close(fd)
            throw FileRefusal(detail: "is a directory, not a file")
        default:
            close(fd)
            throw FileRefusal(detail: "not a regular file (a device, FIFO or socket); refusing to read it")
        }
        let size = Int(st.st_size)
        guard size <= limit else {
            close(fd)
            throw FileRefusal(detail: "file is \(size) bytes, more than the \(limit) this reader accepts")
        }
        self.path = path
        self.fd = fd
        self.size = size
    }

    deinit { close(fd) }

    /// Bytes left after what was read so far.
    var remaining: Int { size - position }

    /// The next `count` bytes; throws when the file ends sooner (it shrank while read).
    func read(_ count: Int) throws -> [UInt8] {
        precondition(count >= 0 && count <= remaining, "RegularFile.read past the size fstat gave")
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { readBytes(fd, $0.baseAddress! + filled, count - filled) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw FileRefusal(detail: SystemCallError(call: "read", path: path, errno: errno).message)
            }
            if n == 0 {
                throw FileRefusal(detail: "file ended after \(position + filled) of its \(size) bytes (it shrank while read)")
            }
            filled += n
        }
        position += count
        return bytes
    }
}

// File scope: inside RegularFile, `read` names the method.
private func readBytes(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }

extension FileSystem {
    /// The whole of a regular file of at most `limit` bytes.
    static func readRegularFile(_ path: String, limit: Int) throws -> [UInt8] {
        let file = try RegularFile(path, limit: limit)
        return try file.read(file.size)
    }
}

extension FileSystem {
    /// Why a directory cannot be created at `path`: the first existing component that is not a
    /// directory ("runs/x is a regular file"), or nil when there is none.
    static func blockingComponent(of path: String) -> String? {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix = prefix.isEmpty || prefix == "/" ? prefix + part : prefix + "/" + part
            switch kind(of: prefix) {
            case nil: return nil
            case .directory?: continue
            case .file?: return "\(prefix) is a regular file"
            case .other?: return "\(prefix) is not a directory"
            }
        }
        return nil
    }
}

/// The one reader for a file a user names (`--space`, `--config`, `--model-spec`, a run's JSON):
/// regular files only, at most `limit` bytes, read at once. A FIFO, a device such as `/dev/zero`,
/// a folder or a missing file get one line naming the path and the reason, never a read that
/// waits or grows without end. (Checkpoints and datasets read in pieces through `RegularFile`,
/// under the same rules.)
public enum InputFile {
    /// JSON inputs (specs, spaces, configs, manifests) are small; anything above is not one.
    public static let defaultLimit = 16 << 20

    /// The bytes of `path`; `flag` names the flag that gave it, for the message.
    public static func read(_ path: String, flag: String? = nil, limit: Int = defaultLimit) throws -> [UInt8] {
        do { return try FileSystem.readRegularFile(path, limit: limit) } catch let r as FileRefusal {
            throw InputFileError(path: path, flag: flag, reason: r.isMissing ? "does not exist" : r.detail)
        }
    }
}

/// A file argument that cannot be read: "--space /dev/zero: not a regular file ...".
public struct InputFileError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let flag: String?
    public let reason: String
    public init(path: String, flag: String?, reason: String) {
        self.path = path
        self.flag = flag
        self.reason = reason
    }
    public var description: String { (flag.map { $0 + " " } ?? "") + path + ": " + reason }
}
