import FuzzSupport
import Trainer

/// A safetensors file: the header, the offsets, the metadata, and the run configuration a
/// checkpoint's metadata carries.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = bytes(data, size)
    guard let file = try? SafeTensors.decode(bytes, file: "fuzz.safetensors") else { return 0 }
    // What decodes must encode again and decode to the same tensors and metadata.
    guard let again = try? SafeTensors.decode(file.encoded(), file: "re-encoded") else {
        fatalError("a decoded safetensors file does not encode and decode again")
    }
    precondition(again.tensors.map(\.name).sorted() == file.tensors.map(\.name).sorted() && again.metadata == file.metadata)
    if let config = file.metadata["config"],
       let c = try? ConfigFile.decode(TrainConfig.self, from: Array(config.utf8), file: "fuzz.safetensors") {
        _ = try? ConfigValidation.check(c, memoryLimit: 4e9, source: .checkpoint("fuzz.safetensors", key: "config"))
    }
    for t in file.tensors {
        _ = try? file.floats(t.name, shape: t.shape)
        _ = try? file.int64s(t.name)
    }
    return 0
}

runLibFuzzer { fuzzSafeTensors($0, $1) }
