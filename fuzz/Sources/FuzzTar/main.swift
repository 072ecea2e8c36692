import FuzzSupport
import Trainer

/// A tar archive (what `strata data fetch` unpacks), listed without writing anything.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let raw = bytes(data, size)
    if let entries = try? Tar.entries(raw, file: "fuzz.tar") {
        for entry in entries {
            precondition(entry.data.lowerBound >= 0 && entry.data.upperBound <= raw.count)
            precondition(!entry.name.hasPrefix("/") && !entry.name.split(separator: "/").contains(".."))
        }
    }
    return 0
}

runLibFuzzer { fuzzTar($0, $1) }
