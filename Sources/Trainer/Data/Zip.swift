import CZlib

/// A reader for zip archives as NumPy's `savez`/`savez_compressed` write them: members stored
/// or deflated, zip64 sizes and offsets, CRC-32 checked. Encryption and other methods are
/// refused. Errors name the archive, the member and the byte offset.
public enum Zip {
    public struct Member: Equatable {
        public var name: String
        public var method: UInt16
        public var crc32: UInt32
        public var compressedSize: Int
        public var size: Int
        /// Offset of the member's local header.
        public var headerOffset: Int
    }

    static func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    static func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
    static func u64(_ b: [UInt8], _ o: Int) -> Int {
        let high = u32(b, o + 4)
        return high >= 1 << 30 ? Int.max : u32(b, o) | high << 32
    }

    /// The members listed in the central directory of `bytes` (the contents of `file`).
    public static func members(_ b: [UInt8], file: String) throws -> [Member] {
        // The end-of-central-directory record is in the last 65,557 bytes (22 + a comment).
        guard b.count >= 22 else { throw DatasetError(.truncated, file: file, offset: b.count, "is not a zip (.npz) archive: only \(b.count) bytes") }
        var eocd = -1
        var o = b.count - 22
        while o >= max(0, b.count - 22 - 65535) {
            if b[o] == 0x50, b[o + 1] == 0x4b, b[o + 2] == 5, b[o + 3] == 6 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else {
            throw DatasetError(.badMagic, file: file, offset: max(0, b.count - 22), "is not a zip (.npz) archive: no end-of-central-directory record")
        }
        var count = u16(b, eocd + 10)
        var directory = u32(b, eocd + 16)
        if count == 0xFFFF || directory == 0xFFFF_FFFF {
            // zip64: the locator just before the record points at the zip64 end record.
            let locator = eocd - 20
            guard locator >= 0, u32(b, locator) == 0x0706_4b50 else {
                throw DatasetError(.badHeader, file: file, offset: eocd, "zip64 archive without its end-of-central-directory locator")
            }
            let record = u64(b, locator + 8)
            guard record <= b.count - 56, u32(b, record) == 0x0606_4b50 else {
                throw DatasetError(.badHeader, file: file, offset: locator, "zip64 end-of-central-directory record is missing or out of the file")
            }
            count = u64(b, record + 32)
            directory = u64(b, record + 48)
        }
        guard count <= b.count / 46 else {
            throw DatasetError(.badHeader, file: file, offset: eocd, "central directory declares \(count) members, more than fit in the file")
        }
        var members: [Member] = []
        o = directory
        for i in 0..<count {
            guard o >= 0, o <= b.count - 46, u32(b, o) == 0x0201_4b50 else {
                throw DatasetError(.badHeader, file: file, offset: o, "central directory entry \(i) is missing or corrupt")
            }
            let flags = u16(b, o + 8)
            let nameLength = u16(b, o + 28), extraLength = u16(b, o + 30), commentLength = u16(b, o + 32)
            guard o + 46 + nameLength + extraLength <= b.count else {
                throw DatasetError(.truncated, file: file, offset: o, "central directory entry \(i) runs past the end of the file")
            }
            let name = String(decoding: b[(o + 46)..<(o + 46 + nameLength)], as: UTF8.self)
            var member = Member(name: name, method: UInt16(u16(b, o + 10)), crc32: UInt32(u32(b, o + 16)),
                                compressedSize: u32(b, o + 20), size: u32(b, o + 24), headerOffset: u32(b, o + 42))
            // zip64 extra field (0x0001): 8-byte values for exactly the fields that read 0xFFFFFFFF.
            var e = o + 46 + nameLength
            let end = e + extraLength
            while e + 4 <= end {
                let id = u16(b, e), length = u16(b, e + 2)
                if id == 1 {
                    var f = e + 4
                    func next() throws -> Int {
                        guard f + 8 <= e + 4 + length, f + 8 <= b.count else {
                            throw DatasetError(.badHeader, file: file, offset: e, "member '\(name)': zip64 extra field is too short")
                        }
                        defer { f += 8 }
                        return u64(b, f)
                    }
                    if member.size == 0xFFFF_FFFF { member.size = try next() }
                    if member.compressedSize == 0xFFFF_FFFF { member.compressedSize = try next() }
                    if member.headerOffset == 0xFFFF_FFFF { member.headerOffset = try next() }
                }
                e += 4 + length
            }
            guard flags & 1 == 0 else {
                throw DatasetError(.badHeader, file: file, offset: o, "member '\(name)' is encrypted")
            }
            members.append(member)
            o = end + commentLength
        }
        return members
    }

    /// The uncompressed contents of `member`, at most `limit` bytes.
    public static func contents(of member: Member, in b: [UInt8], file: String, limit: Int = DatasetError.maxFileSize) throws -> [UInt8] {
        let where_ = "member '\(member.name)'"
        let h = member.headerOffset
        guard h >= 0, h <= b.count - 30, u32(b, h) == 0x0403_4b50 else {
            throw DatasetError(.badHeader, file: file, offset: h, "\(where_): local header is missing or corrupt")
        }
        let start = h + 30 + u16(b, h + 26) + u16(b, h + 28)
        guard member.compressedSize >= 0, start <= b.count, member.compressedSize <= b.count - start else {
            throw DatasetError(.truncated, file: file, offset: h, "\(where_): its \(member.compressedSize) bytes run past the end of the archive")
        }
        let limit = min(limit, Int(UInt32.max) - 2)   // zlib counts in 32 bits
        guard member.size <= limit, member.compressedSize <= limit else {
            throw DatasetError(.badHeader, file: file, offset: h, "\(where_): declares \(member.size) bytes, more than the \(limit) accepted")
        }
        let data = Array(b[start..<(start + member.compressedSize)])
        let output: [UInt8]
        switch member.method {
        case 0:
            guard member.size == data.count else {
                throw DatasetError(.badHeader, file: file, offset: h, "\(where_): stored with \(data.count) bytes but declares \(member.size)")
            }
            output = data
        case 8:
            // Deflate expands at most ~1032:1: a larger declared size is corrupt (and must not
            // make us allocate it).
            guard member.size <= member.compressedSize * 1032 + 1024 else {
                throw DatasetError(.badHeader, file: file, offset: h,
                                   "\(where_): declares \(member.size) bytes, more than \(member.compressedSize) deflated bytes can hold")
            }
            output = try inflateRaw(data, size: member.size, file: file, what: where_, offset: start)
        default:
            throw DatasetError(.badCompression, file: file, offset: h,
                               "\(where_): compression method \(member.method) is not supported (only stored and deflate)")
        }
        let crc = output.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        guard crc == member.crc32 else {
            throw DatasetError(.badCompression, file: file, offset: start, "\(where_): CRC-32 mismatch, the archive is corrupt")
        }
        return output
    }

    /// Raw deflate (no zlib/gzip header) into exactly `size` bytes.
    static func inflateRaw(_ data: [UInt8], size: Int, file: String, what: String, offset: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DatasetError(.badCompression, file: file, "zlib inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: size + 1)   // one spare byte detects overlong data
        var data = data
        let result: Int32 = data.withUnsafeMutableBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = input.baseAddress
                stream.avail_in = UInt32(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = UInt32(out.count)
                var r: Int32 = Z_OK
                repeat { r = inflate(&stream, Z_FINISH) } while r == Z_OK
                return r
            }
        }
        let produced = output.count - Int(stream.avail_out)
        guard result == Z_STREAM_END, produced == size else {
            let reason = result == Z_STREAM_END ? "inflates to \(produced) bytes, not the \(size) declared"
                : result == Z_BUF_ERROR && produced <= size ? "deflate data is truncated" : "corrupt deflate data"
            throw DatasetError(.badCompression, file: file, offset: offset + Int(stream.total_in), "\(what): \(reason)")
        }
        output.removeLast()
        return output
    }
}
