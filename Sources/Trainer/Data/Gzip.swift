import CZlib

/// gzip/zlib decompression through zlib (`inflateInit2_` with windowBits 15+32, which detects
/// either header). Concatenated gzip members (what `cat a.gz b.gz` produces) are decompressed
/// one after another, as gunzip does.
enum Gzip {
    /// True when `bytes` starts with the gzip magic number 1f 8b.
    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// The decompressed contents of `compressed`, read from `file` (named in errors, with the
    /// compressed byte offset where decoding failed).
    /// Output beyond `limit` bytes is refused (a gzip bomb, or a corrupt ISIZE).
    static func decompress(_ compressed: [UInt8], file: String, limit: Int = 1 << 34) throws -> [UInt8] {
        var stream = z_stream()
        let status = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw DatasetError(.badCompression, file: file, "zlib inflateInit2 failed with status \(status)")
        }
        defer { inflateEnd(&stream) }

        // The gzip trailer's ISIZE (length mod 2^32) is a good first guess at the output size.
        var capacity = max(compressed.count * 2, 1 << 16)
        if isGzip(compressed), compressed.count >= 18 {
            let n = compressed.count
            let isize = Int(compressed[n - 4]) | Int(compressed[n - 3]) << 8 | Int(compressed[n - 2]) << 16 | Int(compressed[n - 1]) << 24
            // Deflate expands at most ~1032:1, so a larger ISIZE is corrupt: do not trust it.
            capacity = max(capacity, min(isize + 1, compressed.count * 1032 + (1 << 16), limit + 1))
        }
        capacity = min(capacity, limit + 1)
        var output = [UInt8](repeating: 0, count: capacity)
        var produced = 0

        try compressed.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = UInt32(input.count)   // datasets are far below 4 GiB compressed
            while true {
                if produced == output.count {
                    guard produced <= limit else {
                        throw DatasetError(.badCompression, file: file, offset: produced,
                                           "decompresses to more than \(limit) bytes; refusing it (decompressed offset)")
                    }
                    output.append(contentsOf: repeatElement(0, count: min(output.count, limit + 1 - produced)))
                }
                let result: Int32 = output.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress! + produced
                    stream.avail_out = UInt32(min(out.count - produced, Int(UInt32.max)))
                    let before = stream.avail_out
                    let r = inflate(&stream, Z_NO_FLUSH)
                    produced += Int(before - stream.avail_out)
                    return r
                }
                let consumed = input.count - Int(stream.avail_in)
                switch result {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    guard stream.avail_in > 0 else { return }
                    // Another gzip member follows: go on; anything else is an error.
                    let next = input.baseAddress! + consumed
                    guard stream.avail_in >= 2, next[0] == 0x1f, next[1] == 0x8b else {
                        throw DatasetError(.badCompression, file: file, offset: consumed,
                                           "\(stream.avail_in) bytes of trailing data after the gzip stream (compressed offset)")
                    }
                    inflateReset(&stream)
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw DatasetError(.badCompression, file: file, offset: consumed,
                                       "gzip stream is truncated: the file ends before the end of the compressed data (compressed offset)")
                case Z_BUF_ERROR:
                    continue   // output full; grown above
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "status \(result)"
                    throw DatasetError(.badCompression, file: file, offset: consumed,
                                       "corrupt compressed data: \(message) (compressed offset)")
                }
            }
        }
        guard produced <= limit else {
            throw DatasetError(.badCompression, file: file, offset: limit,
                               "decompresses to more than \(limit) bytes; refusing it (decompressed offset)")
        }
        output.removeSubrange(produced...)
        return output
    }
}
