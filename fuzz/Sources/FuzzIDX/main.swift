import FuzzSupport
import Trainer

/// An IDX file, raw or gzip (the first bytes decide), read both as images and as labels.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let raw = bytes(data, size)
    // 64 MiB: enough for every image a small input can declare, far below libFuzzer's RSS limit.
    guard let (bytes, note) = try? IDX.decodedContents(raw, file: "fuzz-idx", limit: 1 << 26) else { return 0 }
    if let (count, rows, columns, pixels) = try? IDX.parseImages(bytes, file: "fuzz-idx", note: note) {
        precondition(pixels.count == count * rows * columns)
    }
    _ = try? IDX.parseLabels(bytes, file: "fuzz-idx", classes: 10, note: note)
    return 0
}

runLibFuzzer { fuzzIDX($0, $1) }
