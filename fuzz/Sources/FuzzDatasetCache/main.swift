import FuzzSupport
import Trainer

/// A dataset cache file (memory-mapped by every run that uses an image folder or NumPy data).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDatasetCache(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let raw = bytes(data, size)
    _ = raw.withUnsafeBytes { try? DatasetCache.parse($0, file: "fuzz.sdc") }
    return 0
}

runLibFuzzer { fuzzDatasetCache($0, $1) }
