import FuzzSupport
import Trainer

/// An `.npz` archive (input starting with "PK") or a single `.npy` array, taken through to
/// images and labels as the loader does.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumPy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let raw = bytes(data, size)
    var arrays: [NumPy.Array] = []
    if raw.count >= 2 && raw[0] == 0x50 && raw[1] == 0x4B {
        if let members = try? NumPy.archiveArrays(raw, file: "fuzz.npz") { arrays = members.values.map(\.0) }
        if let list = try? Zip.members(raw, file: "fuzz.npz") {
            for member in list.prefix(8) { _ = try? Zip.contents(of: member, in: raw, file: "fuzz.npz", limit: 1 << 24) }
        }
    } else if let array = try? NumPy.parse(raw, file: "fuzz.npy") {
        arrays = [array]
    }
    for array in arrays {
        if let images = try? NumPy.images(array, file: "fuzz") {
            precondition(images.pixels.count == images.count * images.channels * images.height * images.width)
        }
        if let labels = try? NumPy.labels(array, file: "fuzz") { precondition(labels.allSatisfy { $0 >= 0 }) }
    }
    return 0
}

runLibFuzzer { fuzzNumPy($0, $1) }
