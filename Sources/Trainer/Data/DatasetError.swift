#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A dataset that cannot be read: names the file and, where it applies, the byte offset.
///
///     /data/cifar/data_batch_2.bin at byte 6146: label 12 is out of range 0...9
///
/// Offsets in gzip files are offsets in the decompressed stream, and the message says so.
public struct DatasetError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// The directory or a required file does not exist.
        case notFound
        /// The file exists but reading it failed (permissions, I/O error).
        case unreadable
        /// The directory holds no dataset layout this reader knows.
        case unrecognizedLayout
        /// A file ends in the middle of a record or before the size its header declares.
        case truncated
        /// A file is longer than its header declares.
        case trailingData
        /// Wrong magic number in an IDX header.
        case badMagic
        /// A header field is out of range (zero-sized images, absurd counts).
        case badHeader
        /// A label is not a valid class index.
        case badLabel
        /// Files that must agree (images and labels, or batches of one dataset) disagree.
        case mismatch
        /// The gzip stream is corrupt or truncated.
        case badCompression
    }

    public let reason: Reason
    /// The file (or directory) at fault.
    public let file: String
    /// Byte offset of the problem in the file (decompressed stream for gzip), when known.
    public let offset: Int?
    /// What is wrong, for a person.
    public let detail: String

    public init(_ reason: Reason, file: String, offset: Int? = nil, _ detail: String) {
        self.reason = reason
        self.file = file
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        if let offset { return "\(file) at byte \(offset): \(detail)" }
        return "\(file): \(detail)"
    }
}

extension DatasetError {
    /// Wraps a failed read of `file` (missing file -> `.notFound`).
    init(reading file: String, _ error: Error) {
        if let sys = error as? SystemCallError {
            self.init(sys.errno == ENOENT ? .notFound : .unreadable, file: file, sys.message)
        } else if let refusal = error as? FileRefusal {
            self.init(refusal.isMissing ? .notFound : .unreadable, file: file, refusal.detail)
        } else {
            self.init(.unreadable, file: file, "\(error)")
        }
    }
}

extension DatasetError {
    /// `path` is not a directory: missing, or something else (a regular file, a device).
    static func notADirectory(_ path: String, _ what: String) -> DatasetError {
        switch FileSystem.kind(of: path) {
        case nil: return DatasetError(.notFound, file: path, "\(what) does not exist")
        case .file?: return DatasetError(.notFound, file: path, "is a regular file, not a dataset directory")
        default: return DatasetError(.notFound, file: path, "is not a directory, so not a dataset directory")
        }
    }

    /// The largest dataset file the readers accept (raw or compressed): far above CIFAR-10's
    /// 30 MB and Fashion-MNIST's 47 MB, below what would exhaust a workstation.
    public static let maxFileSize = 1 << 34
}
