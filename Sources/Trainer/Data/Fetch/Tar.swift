#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reader for the tar archives datasets ship in (POSIX ustar, as GNU tar writes them): regular
/// files and directories, GNU long names, pax headers skipped. Links, devices and names that
/// leave the destination (absolute, `..`) are refused, so an archive cannot write elsewhere.
public enum Tar {
    public struct Entry: Equatable {
        public enum Kind: Equatable { case file, directory }
        /// Relative path inside the archive, without a trailing slash.
        public var name: String
        public var kind: Kind
        /// Byte range of the contents in the archive.
        public var data: Range<Int>
    }

    /// The entries of the (decompressed) archive `bytes`, read from `file` (named in errors with
    /// the offset of the bad header).
    public static func entries(_ bytes: [UInt8], file: String) throws -> [Entry] {
        var entries: [Entry] = []
        var offset = 0
        var longName: String?
        while offset + 512 <= bytes.count {
            let header = bytes[offset..<(offset + 512)]
            if header.allSatisfy({ $0 == 0 }) { return entries }   // end-of-archive marker
            try checkChecksum(header, file: file, offset: offset)
            let size = try octal(header, at: offset + 124, length: 12, field: "size", file: file)
            let start = offset + 512
            guard size <= bytes.count - start else {
                throw DatasetError(.truncated, file: file, offset: offset,
                                   "tar member declares \(size) bytes but the archive ends \(bytes.count - start) bytes later")
            }
            let type = header[offset + 156]
            var name = longName ?? string(header, at: offset, length: 100)
            longName = nil
            let prefix = string(header, at: offset + 345, length: 155)
            if !prefix.isEmpty, string(header, at: offset + 257, length: 6).hasPrefix("ustar") {
                name = prefix + "/" + name
            }
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                try entries.append(Entry(name: safeName(name, file: file, offset: offset), kind: .file, data: start..<(start + size)))
            case UInt8(ascii: "5"):
                try entries.append(Entry(name: safeName(name, file: file, offset: offset), kind: .directory, data: start..<start))
            case UInt8(ascii: "L"):   // GNU long name: the next header's name is this member's data
                longName = String(decoding: bytes[start..<(start + size)].prefix { $0 != 0 }, as: UTF8.self)
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                break   // pax extended headers: nothing datasets need
            default:
                throw DatasetError(.badHeader, file: file, offset: offset,
                                   "tar member '\(name)' has type '\(Character(UnicodeScalar(type)))' (links and devices are refused; only files and directories)")
            }
            offset = start + (size + 511) / 512 * 512
        }
        // offset may pass the end: the last member's data need not be padded to 512 bytes.
        guard offset >= bytes.count || bytes[offset...].allSatisfy({ $0 == 0 }) else {
            throw DatasetError(.truncated, file: file, offset: offset, "tar archive ends inside a 512-byte header")
        }
        return entries
    }

    /// Writes the entries of `bytes` under `directory` (which must exist), directories first.
    /// Returns the number of files written.
    @discardableResult
    public static func extract(_ bytes: [UInt8], file: String, into directory: String) throws -> Int {
        let list = try entries(bytes, file: file)
        var files = 0
        for entry in list {
            let path = FileSystem.join(directory, entry.name)
            try makeDirectories(entry.kind == .directory ? path : FileSystem.split(path).directory, under: directory)
            guard entry.kind == .file else { continue }
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw DatasetError(.unreadable, file: path, "cannot create: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            try bytes.withUnsafeBytes { all in
                var done = 0
                while done < entry.data.count {
                    let n = write(fd, all.baseAddress! + entry.data.lowerBound + done, entry.data.count - done)
                    guard n > 0 else { throw DatasetError(.unreadable, file: path, "write failed: \(String(cString: strerror(errno)))") }
                    done += n
                }
            }
            files += 1
        }
        return files
    }

    /// Creates `path` and its missing parents below `root`.
    static func makeDirectories(_ path: String, under root: String) throws {
        guard path.count > root.count, FileSystem.kind(of: path) != .directory else { return }
        try makeDirectories(FileSystem.split(path).directory, under: root)
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw DatasetError(.unreadable, file: path, "cannot create the directory: \(String(cString: strerror(errno)))")
        }
    }

    static func safeName(_ raw: String, file: String, offset: Int) throws -> String {
        var name = raw
        while name.hasPrefix("./") { name.removeFirst(2) }
        while name.hasSuffix("/") { name.removeLast() }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !raw.hasPrefix("/"), !parts.contains(".."), !parts.contains(""), !name.contains("\0") else {
            throw DatasetError(.badHeader, file: file, offset: offset, "tar member name '\(raw)' is empty or leaves the destination")
        }
        return name
    }

    static func string(_ header: ArraySlice<UInt8>, at offset: Int, length: Int) -> String {
        String(decoding: header[offset..<(offset + length)].prefix { $0 != 0 }, as: UTF8.self)
    }

    static func octal(_ header: ArraySlice<UInt8>, at offset: Int, length: Int, field: String, file: String) throws -> Int {
        var value = 0
        var digits = 0
        for byte in header[offset..<(offset + length)] {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if digits > 0 { break } else { continue }
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value < 1 << 40 else {
                throw DatasetError(.badHeader, file: file, offset: offset, "tar header field '\(field)' is not an octal number")
            }
            value = value * 8 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return value
    }

    static func checkChecksum(_ header: ArraySlice<UInt8>, file: String, offset: Int) throws {
        let stored = try octal(header, at: offset + 148, length: 8, field: "checksum", file: file)
        var sum = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(byte) }
        guard sum == stored else {
            throw DatasetError(.badHeader, file: file, offset: offset,
                               "tar header checksum \(stored) does not match its bytes (\(sum)): not a tar archive, or corrupt")
        }
    }
}
